//! Generates the rempart.v1 messages and services (protoc from Debian's
//! protobuf-compiler, installed by scripts/setup.sh).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("rempart_v1_descriptor.bin"))
        .compile_protos(&["rempart/v1/scanner.proto"], &["."])?;
    println!("cargo:rerun-if-changed=rempart/v1/scanner.proto");
    Ok(())
}
