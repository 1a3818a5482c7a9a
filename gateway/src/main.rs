//! The `tracenet-gateway` binary: everything is in the library; see `tracenet_gateway::cli`.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    tracenet_gateway::cli::main()
}
