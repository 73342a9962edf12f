//! `switchyard reload CONFIG`: asks a running `switchyard up` of that config (its admin
//! endpoint, `admin.listen`) to read its config file again and apply it, and prints what
//! changed, or every error (the running config then stays in force).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// How long a reload may take to answer: it compiles changed components.
const TIMEOUT: Duration = Duration::from_secs(310);

/// Asks the switchyard whose admin endpoint is `admin` to reload; exit 0 when the new config is
/// in force, 1 when it was rejected, 2 when it cannot be asked.
pub fn run(admin: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    Ok(match crate::admin_client::ask(admin, http::Method::POST, "/reload", TIMEOUT)? {
        Ok((200, summary)) => {
            print!("{summary}");
            ExitCode::SUCCESS
        }
        Ok((status, errors)) => {
            eprint!("{errors}");
            ExitCode::from(if status == 422 { 1 } else { 2 })
        }
        Err(no_answer) => no_answer,
    })
}

/// The `admin.listen` of the config at `path`, read without validating the rest (a config with
/// errors is still sent for the running switchyard to report); `None` when it has none.
pub fn admin_listen_in(path: &Path) -> Result<Option<SocketAddr>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the config: {e}"))?;
    let document: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| format!("not YAML, so admin.listen cannot be found: {e}"))?;
    match document.get("admin").and_then(|admin| admin.get("listen")) {
        None | Some(serde_yaml::Value::Null) => Ok(None),
        Some(serde_yaml::Value::String(listen)) => listen
            .parse()
            .map(Some)
            .map_err(|_| format!("admin.listen: `{listen}` is not an address such as 127.0.0.1:9901")),
        Some(_) => Err("admin.listen: not an address such as 127.0.0.1:9901".to_owned()),
    }
}
