//! A remote's `global.remotePilotAddress` must not be a DNS name: Istio's
//! chart then makes the remote's `istiod` Service an ExternalName, which the
//! API server does not call the sidecar injector through (see
//! `crate::plan::gateway_hostnames`). `plan` refuses it when it sees it;
//! `apply` looks again before each step that fills the address, since the
//! gateway gets its address only while the run goes on.

use crate::engine::context::{ActionError, StepCtx};
use crate::plan::Step;
use crate::plan::gateway_hostnames::{self, SeenAddresses, Weight};
use std::collections::BTreeMap;

/// Fails when a gateway whose address `step` puts into a remote's
/// `remotePilotAddress` has a hostname and no IP, with plan's wording and
/// source. Only reads: run before the step's first change, so a refused
/// step changed nothing. A gateway without a Service or an address yet is
/// left to the substitution, which says so.
pub(crate) async fn refuse_hostname(ctx: &StepCtx, step: &Step) -> Result<(), ActionError> {
    for gateway in gateway_hostnames::remote_pilot_uses(step) {
        let cluster = ctx.cluster(&gateway.cluster)?;
        let Some(service) = ctx.retry(|| cluster.get(&gateway.service)).await? else {
            continue;
        };
        let seen = SeenAddresses {
            load_balancers: BTreeMap::from([(
                gateway.service.clone(),
                gateway_hostnames::ingress_of(&service),
            )]),
        };
        let seen = BTreeMap::from([(gateway.cluster.clone(), seen)]);
        if let Some(refused) = gateway_hostnames::judge(std::slice::from_ref(&gateway), &seen)
            .into_iter()
            .find(|f| f.weight == Weight::Refuse)
        {
            return Err(ActionError::Failed(format!(
                "refused before any change: {}; fix: {}",
                refused.message, refused.fix
            )));
        }
    }
    Ok(())
}
