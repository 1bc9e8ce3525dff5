//! The line every bench prints per figure, which `benches/report.sh` copies
//! into BENCHMARKS.md: `result: figure | value | target | met`.

/// Prints one figure; `met` is `None` for a figure that is reported only.
pub fn result(figure: &str, value: &str, target: &str, met: Option<bool>) {
    let met = match met {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "reported",
    };
    println!("result: {figure} | {value} | {target} | {met}");
}
