//! Compiles the project's own protos (`proto/`) with protox, so no system
//! `protoc` is needed, and writes the descriptor set that gRPC reflection serves.

use prost::Message;
use std::{env, path::PathBuf};

const PROTOS: &[&str] = &["proto/dispatch/authz/admin/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, ["proto"])?;
    std::fs::write(
        out_dir.join("dispatch_authz_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
