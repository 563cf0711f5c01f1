use proptest::prelude::*;

use super::*;

fn public() -> PublicPaths {
    PublicPaths::new(&["/healthz", "/docs/api"]).unwrap()
}

fn routes() -> RouteMap {
    RouteMap::dispatch()
        .with(None, "/api", "shop")
        .unwrap()
        .with(None, "/api/orders", "orders")
        .unwrap()
}

fn target_of_raw(raw: &str) -> Result<String, AmbiguousPath> {
    let (public, routes) = (public(), routes());
    let path = RequestPath::parse(raw)?;
    Ok(match target(&path, "h", &public, Some(&routes))? {
        Target::Public => "public".into(),
        Target::Resource(r) => r.unwrap_or("none").into(),
    })
}

/// Regression (issue 9, item 3): each of these was allowed as something
/// else than what a common upstream serves.
#[test]
fn paths_that_servers_read_differently_are_refused() {
    use AmbiguousPath::*;
    for (raw, want) in [
        // Tomcat, Jetty, Spring: `..;` is `..` once the parameter is cut.
        ("/healthz/..;/v1/secret/db", DotSegment),
        ("/v1/function/..;/secret/db", DotSegment),
        ("/v1/function/..;x=1/secret", DotSegment),
        ("/v1/function/%2e%2e;/secret", DotSegment),
        // A parameter that reaches a more specific route.
        ("/api/orders;jsessionid=1/7", ReadDifferently),
        ("/v1/function;x/hello", ReadDifferently),
        // Letter case that reaches a more specific route or a public one.
        ("/api/ORDERS/7", ReadDifferently),
        ("/API/orders", ReadDifferently),
        ("/V1/function", ReadDifferently),
        ("/HEALTHZ", ReadDifferently),
        // Not decoded by the upstream, or decoded twice.
        ("/api/%6Frders/7", ReadDifferently),
        ("/v1/function/%252e%252e/secret", DotSegment),
        ("/v1/function/%252fsecret", EncodedSeparator),
        ("/v1/function/%255csecret", EncodedSeparator),
        // Found by the property: a `;` that only decoding produces.
        ("/api%3B", ReadDifferently),
        // A capital that only decoding produces.
        ("/api/%4FRDERS", ReadDifferently),
        // A parameter-only segment becomes an empty one.
        ("/v1/;x/function", EmptySegment),
    ] {
        assert_eq!(target_of_raw(raw), Err(want), "{raw}");
    }
}

#[test]
fn paths_every_server_reads_alike_are_accepted() {
    for (raw, want) in [
        ("/v1/function/hello", "function"),
        ("/v1/function/MyFunc", "function"),
        ("/v1/function/a%20b", "function"),
        ("/v1/function/x;v=2", "function"),
        ("/v1/function/%2541", "function"),
        ("/api/orders/7", "orders"),
        ("/api/users", "shop"),
        ("/healthz", "public"),
        ("/healthz/live;x", "public"),
        ("/docs/api/Index.HTML", "public"),
        ("/nowhere/At/All", "none"),
    ] {
        assert_eq!(target_of_raw(raw).as_deref(), Ok(want), "{raw}");
    }
}

// ---- the property: an independent model of common upstreams ----------------

/// A server's reading of a whole path, written independently of `read`:
/// split, cut parameters, decode, resolve dot segments (RFC 3986 §5.2.4),
/// and compare letters with or without case.
#[derive(Debug, Clone, Copy)]
enum Server {
    /// Go, Rust (axum), Node: decode once, as the client wrote it.
    Plain,
    /// nginx: decode, merge slashes, resolve dots.
    Nginx,
    /// Tomcat / Spring: cut `;` parameters (raw), decode, resolve dots.
    Tomcat,
    /// Jetty-like: decode, then cut parameters, resolve dots.
    DecodeThenStrip,
    /// IIS / ASP.NET: decode, `\` as `/`, resolve dots, ignore case.
    Iis,
    /// A proxy that routes on the raw path.
    Raw,
    /// A server that decodes twice.
    Double,
}

const SERVERS: [Server; 7] = [
    Server::Plain,
    Server::Nginx,
    Server::Tomcat,
    Server::DecodeThenStrip,
    Server::Iis,
    Server::Raw,
    Server::Double,
];

fn pct(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn cut(s: &str) -> &str {
    s.split(';').next().unwrap_or_default()
}

fn served(server: Server, raw: &str) -> String {
    let path = raw.split(['?', '#']).next().unwrap();
    let joined: String = match server {
        Server::Plain | Server::Nginx => pct(path),
        Server::Tomcat => path
            .split('/')
            .map(|s| pct(cut(s)))
            .collect::<Vec<_>>()
            .join("/"),
        Server::DecodeThenStrip => path
            .split('/')
            .map(|s| cut(&pct(s)).to_owned())
            .collect::<Vec<_>>()
            .join("/"),
        Server::Iis => pct(path).replace('\\', "/").to_lowercase(),
        Server::Raw => path.to_owned(),
        Server::Double => pct(&pct(path)),
    };
    let mut out: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let fold = matches!(server, Server::Iis);
    let starts = |prefix: &str| {
        let p: Vec<String> = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| if fold { s.to_lowercase() } else { s.to_owned() })
            .collect();
        p.len() <= out.len() && p.iter().zip(&out).all(|(a, b)| a == b)
    };
    if ["/healthz", "/docs/api"].iter().any(|p| starts(p)) {
        return "public".into();
    }
    let mut best: Option<(usize, &str)> = None;
    let dispatch = crate::policy::routes::DISPATCH_RESOURCES
        .iter()
        .map(|r| (format!("/v1/{r}"), *r));
    let extra = [
        ("/api".to_owned(), "shop"),
        ("/api/orders".to_owned(), "orders"),
    ];
    for (prefix, resource) in dispatch.chain(extra) {
        if starts(&prefix) && best.is_none_or(|(len, _)| prefix.len() > len) {
            best = Some((prefix.len(), resource));
        }
    }
    best.map_or("none", |(_, r)| r).into()
}

fn segment() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "v1",
        "function",
        "secret",
        "api",
        "orders",
        "ORDERS",
        "Api",
        "healthz",
        "HEALTHZ",
        "docs",
        "..",
        ".",
        ";x",
        "..;",
        ";",
        "%2e",
        "%2E%2e",
        "%6F",
        "%6frders",
        "%252e%252e",
        "%3B",
        "%3b",
        "x",
        "MyFn",
        "%41",
        "rders",
        "o",
        "%25",
        "%2525",
        "\\",
        "%5c",
        "%2f",
        "%252F",
        "%",
        "fUnction",
    ]);
    prop::collection::vec(piece, 1..3).prop_map(|p| p.concat())
}

fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 1..5), any::<bool>()).prop_map(|(segments, slash)| {
        let mut p = format!("/{}", segments.join("/"));
        if slash {
            p.push('/');
        }
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    /// A path we accept is the same target to every modelled server: a
    /// resource we authorize is the one they serve, a public path is public
    /// to all of them.
    #[test]
    fn an_accepted_path_is_the_same_target_to_every_server(raw in path()) {
        if let Ok(ours) = target_of_raw(&raw) {
            for server in SERVERS {
                prop_assert_eq!(&served(server, &raw), &ours, "{:?} reads {} differently", server, raw);
            }
        }
    }

    /// And the rule refuses no more than it must: a path of plain lower-case
    /// segments is always accepted.
    #[test]
    fn plain_paths_are_accepted(segments in prop::collection::vec("[a-z0-9_-]{1,8}", 1..5)) {
        let raw = format!("/{}", segments.join("/"));
        prop_assert!(target_of_raw(&raw).is_ok(), "{} refused", raw);
    }
}

/// Each way of cutting `;` off, as the server that does it reads the
/// segments (found unchecked by cargo-mutants: the readings overlap, so a
/// swapped condition still refused the same paths through another one).
#[test]
fn each_reading_cuts_parameters_where_its_servers_do() {
    let read_as = |raw: &str, decodes: u8, strip: Strip| -> Vec<String> {
        let reading = Reading {
            decodes,
            strip,
            fold_case: false,
        };
        read(raw, reading)
            .unwrap()
            .into_iter()
            .map(|s| s.into_owned())
            .collect()
    };
    // A raw `;`: cut by Tomcat's and Spring's readings, kept by ours.
    assert_eq!(read_as("/a;p/b", 1, Strip::Never), ["a;p", "b"]);
    assert_eq!(read_as("/a;p/b", 1, Strip::Raw), ["a", "b"]);
    assert_eq!(read_as("/a;p/b", 0, Strip::Always), ["a", "b"]);
    // An encoded `%3B`: a name to Tomcat, a parameter once decoded again.
    assert_eq!(read_as("/a%3Bp", 1, Strip::Raw), ["a;p"]);
    assert_eq!(read_as("/a%3Bp", 1, Strip::Always), ["a"]);
    assert_eq!(read_as("/a%3Bp", 0, Strip::Always), ["a%3Bp"]);
}
