//! The command line (`clap`): every subcommand and flag, with its documentation.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use switchyard_policy::{AllowedHost, DenyNetworkSpec, Target};

use crate::config::{Overrides, Profile};
use crate::policy_check::Resolved;

/// Switchyard: virtual loopback networks, a MySQL pooler and default-deny egress for wasm tenants.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and validate a config; report every error with its key path and line (exit 2).
    Check {
        /// The YAML config file.
        config: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Draw a config: tenants, components, virtual ports, forwards, pools, allowed hosts.
    Map {
        /// The YAML config file.
        config: PathBuf,
        /// The output format.
        #[arg(long, value_enum, default_value_t = MapFormat::Text)]
        format: MapFormat,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Run a config: every tenant's services, http components behind their ingress, and the admin
    /// endpoint, until Ctrl-C or SIGTERM (then everything stops cleanly).
    Up {
        /// The YAML config file.
        config: PathBuf,
        /// Worker shards (single-threaded runtimes; tenant i runs on shard i mod N, and on the
        /// next `limits.shards - 1` too when its limits allow more). Default: one per core.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        shards: Option<u16>,
        /// Also reload when the config file's content changes (checked every 2 s), as a
        /// Kubernetes ConfigMap mounted as a volume changes it. A rejected content is not tried
        /// again until the file changes once more.
        #[arg(long)]
        watch_config: bool,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Ask a running `switchyard up` of CONFIG (its admin endpoint) whether every service runs
    /// and every pool reaches its backend; print why not. Exit 0 ready, 1 not ready, 2 no answer.
    Status {
        /// The YAML config file.
        config: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Ask a running `switchyard up` of CONFIG (its admin endpoint) to read its config file
    /// again and apply it (as SIGHUP does): only tenants whose section changed are touched. Prints
    /// what changed; a config that `check` rejects changes nothing and its errors are printed.
    /// Exit 0 applied, 1 rejected, 2 no answer.
    Reload {
        /// The YAML config file (its admin.listen says where to ask).
        config: PathBuf,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Egress policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Decide targets against allowed-hosts entries; one `allow`/`deny` line per target.
    ///
    /// Exit status: 0 all allowed, 1 any denied, 2 invalid entry, target or usage.
    Check(PolicyCheckArgs),
}

/// Arguments of `switchyard policy check`.
#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// An allowed-hosts entry: `*` or `[scheme://]host[:port]` (repeatable).
    #[arg(long = "allow", value_name = "ENTRY")]
    pub allow: Vec<AllowedHost>,
    /// Pretend DNS resolved NAME to these addresses (repeatable): `api.example.com=192.0.2.1,192.0.2.2`.
    #[arg(long = "resolved", value_name = "NAME=IP[,IP...]")]
    pub resolved: Vec<Resolved>,
    /// A blocked network (`default`, `private`, an address or a CIDR); replaces the default list
    /// (repeatable; write `default` to keep the defaults too).
    #[arg(long = "deny-network", value_name = "NETWORK")]
    pub deny_networks: Vec<DenyNetworkSpec>,
    /// Use the allowed hosts and deny networks of a tenant from this config (with --tenant).
    #[arg(long, value_name = "FILE", requires = "tenant")]
    pub config: Option<PathBuf>,
    /// The tenant of --config whose policy to use.
    #[arg(long, value_name = "TENANT", requires = "config")]
    pub tenant: Option<String>,
    /// Targets to decide: `scheme://host[:port]`, e.g. `tcp://10.1.2.3:5432`, `https://api.example.com`.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<Target>,
}

/// Output formats of `switchyard map`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MapFormat {
    /// A readable tree.
    Text,
    /// A Mermaid flowchart (renders in GitHub Markdown).
    Mermaid,
    /// A Graphviz `dot` graph.
    Dot,
    /// SVG drawn by Graphviz (needs `dot` installed).
    Svg,
}

/// Flags that replace config values, field by field.
#[derive(Debug, Clone, Args)]
pub struct OverrideArgs {
    /// Replace the config's `profile`.
    #[arg(long, value_enum)]
    profile: Option<ProfileArg>,
    /// Replace the config's `admin.listen`.
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProfileArg {
    Dev,
    Prod,
}

impl OverrideArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            profile: self.profile.map(|p| match p {
                ProfileArg::Dev => Profile::Dev,
                ProfileArg::Prod => Profile::Prod,
            }),
            admin_listen: self.admin_listen,
        }
    }
}

impl Cli {
    /// Runs the chosen command and gives its exit status.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Check { config, overrides } => {
                let Some(loaded) = crate::config_file::load_reporting(&config, &overrides.overrides(), true)?
                else {
                    return Ok(ExitCode::from(2));
                };
                let c = &loaded.config;
                if let Err(e) = crate::host::SlotPlan::for_config(c) {
                    eprintln!("error: {}: {e}", config.display());
                    return Ok(ExitCode::from(2));
                }
                let count = |f: fn(&crate::config::Tenant) -> usize| c.tenants.iter().map(f).sum::<usize>();
                println!(
                    "ok: {}: {} tenants, {} components, {} forwards, {} pools (profile {})",
                    config.display(),
                    c.tenants.len(),
                    count(|t| t.components.len()),
                    count(|t| t.forwards.len()),
                    count(|t| t.pools.len()),
                    c.profile,
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Map { config, format, overrides } => {
                let Some(loaded) =
                    crate::config_file::load_reporting(&config, &overrides.overrides(), false)?
                else {
                    return Ok(ExitCode::from(2));
                };
                let drawn = match format {
                    MapFormat::Text => crate::map::text(&config, &loaded.config),
                    MapFormat::Mermaid => crate::map::graph::mermaid(&loaded.config),
                    MapFormat::Dot => crate::map::graph::dot(&loaded.config),
                    MapFormat::Svg => crate::map::graph::svg(&loaded.config)?,
                };
                print!("{drawn}");
                Ok(ExitCode::SUCCESS)
            }
            Command::Up { config, shards, watch_config, overrides } => {
                let Some(loaded) = crate::config_file::load_reporting(&config, &overrides.overrides(), true)?
                else {
                    return Ok(ExitCode::from(2));
                };
                let source = crate::host::ConfigSource {
                    path: config,
                    overrides: overrides.overrides(),
                    watch: watch_config.then_some(crate::host::CONFIG_WATCH_PERIOD),
                };
                crate::host::up(&loaded.config, &source, shards.map(usize::from))?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Status { config, overrides } => {
                let Some(loaded) =
                    crate::config_file::load_reporting(&config, &overrides.overrides(), false)?
                else {
                    return Ok(ExitCode::from(2));
                };
                crate::status::run(loaded.config.admin.listen)
            }
            Command::Reload { config, overrides } => {
                // Only admin.listen is read here: the running switchyard loads the file, and
                // answers (and logs) every error in it.
                let admin = match overrides.admin_listen {
                    Some(addr) => Some(addr),
                    None => match crate::reload::admin_listen_in(&config) {
                        Ok(addr) => addr,
                        Err(error) => {
                            eprintln!("error: {}: {error}", config.display());
                            return Ok(ExitCode::from(2));
                        }
                    },
                };
                crate::reload::run(admin)
            }
            Command::Policy { command: PolicyCommand::Check(args) } => crate::policy_check::run(&args),
        }
    }
}
