//! `switchyard status CONFIG`: asks a running `switchyard up` of that config (its admin
//! endpoint, `admin.listen`) whether it is ready, and prints its report: `ready`, or `not ready`
//! and one line per tenant, component or pool that is not, and why.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// How long the admin endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Prints the readiness report of the switchyard whose admin endpoint is `admin`; exit 0 when
/// ready, 1 when not, 2 when it cannot be asked.
pub fn run(admin: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    Ok(match crate::admin_client::ask(admin, http::Method::GET, "/healthz", TIMEOUT)? {
        Ok((status, report)) => {
            print!("{report}");
            if status == 200 { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(no_answer) => no_answer,
    })
}
