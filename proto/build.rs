//! Compiles the gRPC contracts in proto/ with protox (pure Rust; protoc is not needed): a
//! client and a server for each service.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tereze/v1/exchange.proto",
        "proto/tereze/v1/window.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
