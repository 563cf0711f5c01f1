//! Issue 16: every dispatch-authz configuration the repository ships
//! compiles as the server would read it (the quick start's, the compose
//! topology's with its environment, the Kubernetes ConfigMap's), so none
//! can rot. Their other halves are validated in `.ci/run`: the Envoy files
//! by `envoy --mode validate` (`envoy.rs`), the Kubernetes manifests by
//! kubernetes-validate, the Istio resources by `scripts/validate-deploy.py`,
//! the compose file by check-jsonschema.

use std::path::Path;

use dispatch_authz::config::{Overrides, Settings};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compiles(file: &Path) {
    let settings = Settings::load(Some(file), &Overrides::default())
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    settings
        .compile()
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

#[test]
fn the_quick_start_configuration_compiles_from_any_directory() {
    // Its key path is read from the file's directory, wherever the test runs.
    compiles(&root().join("examples/quickstart/dispatch-authz.toml"));
}

#[test]
fn the_compose_configuration_compiles_where_the_volumes_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("dispatch-authz");
    std::fs::create_dir_all(etc.join("keys")).unwrap();
    std::fs::copy(
        root().join("examples/compose/dispatch-authz.toml"),
        etc.join("dispatch-authz.toml"),
    )
    .unwrap();
    std::fs::copy(
        root().join("examples/quickstart/dev-signing-key.pub.pem"),
        etc.join("keys/dev-signing-key.pub.pem"),
    )
    .unwrap();
    compiles(&etc.join("dispatch-authz.toml"));
}

#[test]
fn the_kubernetes_configmap_holds_a_configuration_that_compiles() {
    let yaml = std::fs::read_to_string(root().join("deploy/kubernetes/configmap.yaml")).unwrap();
    let (_, body) = yaml.split_once("dispatch-authz.toml: |\n").unwrap();
    let toml: String = body
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dispatch-authz.toml");
    std::fs::write(&file, toml).unwrap();
    compiles(&file);
}
