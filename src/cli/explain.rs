//! `dispatch-authz explain`: one request decided by the configured server's
//! own check code, against its store, every step printed.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use crate::{
    check::{ClientHeaders, Decision, ExplainAs, Explanation, RequestView},
    config::Config,
    domain::{IssuerName, Principal, Subject},
    startup,
};

#[derive(Debug, Args)]
pub struct Explain {
    /// The caller's bearer token, verified as a check verifies it.
    #[arg(long, required_unless_present = "user", conflicts_with = "user")]
    pub token: Option<String>,
    /// The caller, named without a token: SOURCE:SUBJECT (a user).
    #[arg(long, value_name = "SOURCE:SUBJECT")]
    pub user: Option<String>,
    /// The organization asked for (sent as x-dispatch-org).
    #[arg(long)]
    pub org: Option<String>,
    /// The request's host (for host-specific routes).
    #[arg(long, default_value = "")]
    pub host: String,
    /// More request headers, NAME:VALUE (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// One JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    /// The HTTP method, e.g. GET.
    pub method: String,
    /// The request path, as sent (query included).
    pub path: String,
}

/// Exit status of a refused request, so scripts can tell it from an error
/// (1).
const DENIED: u8 = 2;

pub async fn explain(args: &Explain, config: Config) -> anyhow::Result<ExitCode> {
    let caller = match (&args.token, &args.user) {
        (Some(token), _) => ExplainAs::Token(token),
        (None, Some(user)) => ExplainAs::User(principal(user)?),
        (None, None) => bail!("name the caller: --token TOKEN or --user SOURCE:SUBJECT"),
    };
    let mut headers = Vec::new();
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("--header {header:?}: expected NAME:VALUE");
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(org) = &args.org {
        headers.push(("x-dispatch-org".into(), org.clone()));
    }
    let request = RequestView {
        method: &args.method,
        host: &args.host,
        path: &args.path,
        request_id: None,
        headers: ClientHeaders::new(headers),
        budget: None,
        removals: Default::default(),
        trace: None,
    };
    let checker = startup::explainer(config).await?;
    let explanation = checker.explain(&request, caller).await;
    if args.json {
        println!("{}", as_json(&explanation));
    } else {
        for step in &explanation.steps {
            println!("{:<13} {}", step.phase, step.detail);
        }
        println!("{:<13} {}", "decision", verdict(&explanation.decision));
    }
    Ok(match explanation.decision {
        Decision::Allow { .. } => ExitCode::SUCCESS,
        Decision::Deny(_) => ExitCode::from(DENIED),
    })
}

fn principal(user: &str) -> anyhow::Result<Principal> {
    let (source, subject) = user
        .split_once(':')
        .with_context(|| format!("--user {user:?}: expected SOURCE:SUBJECT"))?;
    Ok(Principal {
        issuer: IssuerName::parse(source).with_context(|| format!("--user {user:?}"))?,
        subject: Subject::parse(subject).with_context(|| format!("--user {user:?}"))?,
    })
}

fn verdict(decision: &Decision) -> String {
    match decision {
        Decision::Allow { upstream, .. } => {
            let set: Vec<String> = upstream
                .set
                .iter()
                .map(|(name, value)| format!("{name}: {}", value.as_str()))
                .collect();
            format!("allow; upstream gets {}", set.join(", "))
        }
        Decision::Deny(denial) => format!(
            "deny {} {}: {}",
            denial.kind.http_status(),
            denial.reason,
            denial.message
        ),
    }
}

fn as_json(explanation: &Explanation) -> serde_json::Value {
    let steps: Vec<_> = explanation
        .steps
        .iter()
        .map(|s| json!({"phase": s.phase, "detail": s.detail}))
        .collect();
    let decision = match &explanation.decision {
        Decision::Allow { upstream, .. } => json!({
            "decision": "allow",
            "headers": upstream.set.iter()
                .map(|(n, v)| (n.to_string(), json!(v.as_str())))
                .collect::<serde_json::Map<_, _>>(),
        }),
        Decision::Deny(d) => json!({
            "decision": "deny",
            "status": d.kind.http_status(),
            "reason": d.reason,
            "message": d.message,
        }),
    };
    json!({"steps": steps, "result": decision})
}
