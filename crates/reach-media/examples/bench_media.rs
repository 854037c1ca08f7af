//! The media benchmark without the `reach` binary:
//! `cargo run --release -p reach-media --example bench_media [FRAMES]`.
//! Same figures as `reach bench media`.

fn main() -> Result<(), reach_media::MediaError> {
    let mut options = reach_media::bench::BenchOptions::default();
    if let Some(frames) = std::env::args().nth(1).and_then(|f| f.parse().ok()) {
        options.frames = frames;
    }
    let rows = reach_media::bench::run(&options)?;
    println!(
        "{}",
        reach_media::bench::format_report(&rows, options.width, options.height)
    );
    Ok(())
}
