//! Serves two simulated clusters until Ctrl-C (manual exploration).

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/sim.kubeconfig".into());
    let sim = meshsim::Sim::start(meshsim::SimConfig {
        kubeconfig_path: Some(path.into()),
        ..Default::default()
    })
    .await?;
    println!("kubeconfig: {}", sim.kubeconfig_path().display());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
