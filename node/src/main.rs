//! The `tracenet-node` binary: everything is in the library; see `tracenet_node::cli`.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    tracenet_node::cli::main()
}
