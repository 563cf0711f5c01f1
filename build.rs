//! Compiles the project's own protos (`proto/`) with protox, so no system
//! `protoc` is needed.

const PROTOS: &[&str] = &["proto/dispatch/authz/admin/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // `sqlx::migrate!` embeds the migrations at build time: a new file must
    // rebuild the crate (it did not, and tests ran without it).
    println!("cargo:rerun-if-changed=migrations");
    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The CLI prints replies as JSON.
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    Ok(())
}
