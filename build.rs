//! Compiles the project's own protos (`proto/`) with protox, so no system
//! `protoc` is needed, and the descriptor sets that gRPC reflection serves:
//! the admin API's, and Envoy's Authorization service from the vendored
//! protos (`proto/vendor/`; its Rust types come from `envoy-types`).

use prost::Message;

const PROTOS: &[&str] = &["proto/dispatch/authz/admin/v1/admin.proto"];
const EXT_AUTHZ: &str = "envoy/service/auth/v3/external_auth.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds the migrations at build time: a new file must
    // rebuild the crate (it did not, and tests ran without it).
    println!("cargo:rerun-if-changed=migrations");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, ["proto"])?;
    std::fs::write(out.join("admin_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The CLI prints replies as JSON.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    let envoy = protox::compile([EXT_AUTHZ], ["proto/vendor"])?;
    std::fs::write(out.join("ext_authz_descriptor.bin"), envoy.encode_to_vec())?;
    Ok(())
}
