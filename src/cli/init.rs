//! `dispatch-authz init DIR`: a working development setup in a directory of
//! the user's choice — a configuration trusting a fresh key pair (issuer
//! `dev`), the private key beside it for `token mint`, the database file
//! beside them. Paths in the file are read from the file's directory, so
//! it works from anywhere.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::keys::generate_es256;

pub const CONFIG_FILE: &str = "dispatch-authz.toml";
const PRIVATE_KEY: &str = "dev-signing-key.pem";
const PUBLIC_KEY: &str = "dev-signing-key.pub.pem";
/// The development issuer's `iss` and audience.
pub const DEV_ISS: &str = "https://dev.dispatch.local";

fn config(kid: &str) -> String {
    format!(
        r#"# A development configuration written by `dispatch-authz init`.
#
# The issuer "dev" trusts {PUBLIC_KEY}; its private key, {PRIVATE_KEY}, lies
# beside it so that `dispatch-authz token mint` can make tokens. Anyone who
# reads this directory can mint tokens: never use it anywhere real.
# Relative paths are read from this file's directory.

[server]
listen = "127.0.0.1:50051"

[admin]                       # the admin API (`dispatch-authz iam`)
listen = "127.0.0.1:50052"

[operations]                  # /healthz, /readyz, /metrics
listen = "127.0.0.1:50054"

[authorization]
mode = "rbac"                 # roles decide; `bootstrap` makes the first admin

[store]
database = "dispatch-authz.db"

[check]
public_paths = ["/healthz"]

[[issuers]]
name = "dev"
issuer = "{DEV_ISS}"
audiences = ["dispatch"]

[[issuers.public_keys]]
pem_file = "{PUBLIC_KEY}"
algorithm = "ES256"
kid = "{kid}"
"#
    )
}

/// Writes the setup into `dir` (created if needed); refuses to overwrite.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    let files: Vec<PathBuf> = [CONFIG_FILE, PRIVATE_KEY, PUBLIC_KEY]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    if let Some(existing) = files.iter().find(|f| f.exists()) {
        bail!(
            "{} exists; init never overwrites (remove the directory to start again)",
            existing.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (private, public) = generate_es256()?;
    let kid = "dev-1";
    write(&files[1], &private, true)?;
    write(&files[2], &public, false)?;
    write(&files[0], &config(kid), false)?;
    print!("{}", next_steps(dir, kid));
    Ok(())
}

fn write(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

fn next_steps(dir: &Path, kid: &str) -> String {
    let config = dir.join(CONFIG_FILE);
    let key = dir.join(PRIVATE_KEY);
    format!(
        "wrote {config}, {key} and its public key\n\
         \n\
         next:\n  \
         dispatch-authz --config {config} serve\n  \
         dispatch-authz --config {config} bootstrap --source dev --subject 583231 --login octocat\n  \
         dispatch-authz token mint --key {key} --kid {kid} --issuer {DEV_ISS} --audience dispatch --subject 583231\n\
         \n\
         start again: stop the server and remove {dir}\n",
        config = config.display(),
        key = key.display(),
        dir = dir.display(),
    )
}
