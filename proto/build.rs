//! Compiles the .proto contracts with protox (pure Rust), so no system `protoc` is needed, and
//! generates canonical proto3 JSON (serde) implementations with pbjson for the JSON-facing edges
//! (file import, the gateway's API).

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "tracenet/v1/records.proto",
        "tracenet/v1/envelope.proto",
        "tracenet/v1/peer.proto",
        "tracenet/v1/local.proto",
        "tracenet/v1/storage.proto",
        "tracenet/v1/policy.proto",
        "tracenet/v1/directory.proto",
        "tracenet/v1/hub.proto",
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let descriptor_bytes = fds.encode_to_vec();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .preserve_proto_field_names()
        .build(&[".tracenet.v1"])?;
    Ok(())
}
