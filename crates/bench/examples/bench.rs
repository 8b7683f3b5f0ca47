//! The harness alone, without the server: `cargo run -p bench --release
//! --example bench -- ARGS` takes what `rookeeper bench ARGS` takes
//! (give `compare` a server binary with `--rookeeper`).

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    bench::main(&args)
}
