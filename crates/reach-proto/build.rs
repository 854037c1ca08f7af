//! Generates the Rust types for `proto/*.proto` with `protox`, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/reach/v1/envelope.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    let mut config = prost_build::Config::new();
    // Payload fields become `bytes::Bytes`, so decoding a 4 MiB frame slices the
    // input buffer instead of copying it.
    config.bytes(["."]);
    config.compile_fds(descriptors)?;
    Ok(())
}
