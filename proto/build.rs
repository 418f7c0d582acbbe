//! Compiles every `.proto` under `cx/` with protox (pure Rust: no `protoc`
//! needed on the build machine), generates prost messages and tonic stubs, and
//! writes the encoded descriptor set that server reflection serves.

use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut protos = Vec::new();
    collect_protos(&root.join("cx"), &mut protos)?;
    protos.sort();
    // tonic-prost-build does not emit rerun-if-changed for descriptor sets
    // compiled elsewhere, so name every input ourselves.
    println!("cargo:rerun-if-changed=cx");
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }

    let fds = protox::compile(&protos, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("cx_descriptor.bin"), fds.encode_to_vec())?;

    // Type names: outbox messages are known by their full protobuf name.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    // Every service and client decodes through the CX codec (src/codec.rs).
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::CxCodec")
        .compile_fds_with_config(fds, config)?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
