fn main() {
    let mut o = reach_media::bench::BenchOptions::default();
    if let Some(f) = std::env::args().nth(1) {
        o.frames = f.parse().unwrap();
    }
    let rows = reach_media::bench::run(&o).unwrap();
    println!(
        "{}",
        reach_media::bench::format_report(&rows, o.width, o.height)
    );
}
