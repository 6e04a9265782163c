//! Compiles the node protocol's gRPC contracts (`node/proto`, the published contract) into a
//! client with protox: the suite speaks the protocol, not the node's code.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "../node/proto/tereze/v1/exchange.proto",
        "../node/proto/tereze/v1/window.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["../node/proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
