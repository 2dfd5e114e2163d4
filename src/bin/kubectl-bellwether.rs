//! `kubectl bellwether`: the plugin people and CI pipelines use to watch and steer Rollouts.

use bellwether::cli::cluster::{KubeArgs, client, connect};
use bellwether::cli::complete::{self, COMPLETE_COMMAND, complete};
use bellwether::cli::history;
use bellwether::cli::rollout_ref::{ROLLOUT_VALUE_NAME, TypeRule, rollout_name};
use bellwether::cli::steer::steer;
use bellwether::cli::{convert, edit, lint, show, status};
use bellwether::engine::UserAction;
use clap::{CommandFactory, Parser, Subcommand};
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::Duration;

/// Watch and steer Bellwether Rollouts. Installed on the PATH as `kubectl-bellwether`, kubectl runs
/// it as `kubectl bellwether ...`; it also works when called directly.
#[derive(Parser)]
#[command(name = "kubectl-bellwether", bin_name = "kubectl bellwether", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    kube: KubeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Show one rollout as a tree: steps, weights, revisions and pods, analysis, recent Events:
    /// `get rollout NAME`, or with any other type that names Bellwether's Rollouts (`ro`, `bwro`,
    /// `rollouts.bellwether.dev`), or as `rollout/NAME`.
    Get {
        #[command(flatten)]
        rollout: RolloutArg,
        /// Redraw on every change until the rollout is Healthy or Degraded (in place on a
        /// terminal, appended otherwise).
        #[arg(short, long)]
        watch: bool,
        /// How to print it, as kubectl's -o.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: show::Output,
    },
    /// Every action recorded for a rollout, newest first: each request of a person or an alert,
    /// and each decision that moved traffic, with who, when, the revision and why. Kept in the
    /// Rollout's status after its Events expire.
    History {
        #[command(flatten)]
        rollout: RolloutArg,
        /// How to print it, as kubectl's -o.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: history::Output,
    },
    /// One line per rollout.
    List {
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Only the rollouts with these labels, as kubectl's: `app=web`, `tier!=batch`,
        /// `env in (prod,staging)`, `canary`, `!legacy`, joined by commas.
        #[arg(short = 'l', long, value_name = "SELECTOR")]
        selector: Option<String>,
        /// Redraw on every change, until interrupted.
        #[arg(short, long)]
        watch: bool,
        /// How to print it, as kubectl's -o.
        #[arg(short = 'o', long, value_enum, default_value = "text")]
        output: show::Output,
    },
    /// Skip the current step (or accept a paused analysis) and go on; with --full, skip every
    /// remaining step and promote now.
    Promote {
        #[command(flatten)]
        rollout: RolloutArg,
        /// Skip every remaining step and promote now.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Send all traffic back to stable and stop the canary.
    Abort {
        #[command(flatten)]
        rollout: RolloutArg,
        #[command(flatten)]
        wait: Wait,
    },
    /// Start an aborted canary again from step 1.
    Retry {
        #[command(flatten)]
        rollout: RolloutArg,
        #[command(flatten)]
        wait: Wait,
    },
    /// Hold the canary where it is.
    Pause {
        #[command(flatten)]
        rollout: RolloutArg,
        #[command(flatten)]
        wait: Wait,
    },
    /// Lift a pause, or run a paused analysis again.
    Resume {
        #[command(flatten)]
        rollout: RolloutArg,
        #[command(flatten)]
        wait: Wait,
    },
    /// Wait until the rollout finishes, for CI.
    ///
    /// Reads the rollout once and then watches it. Failures of the API server that may pass (no
    /// connection, 5xx, 429, a dropped watch) are retried with backoff until --timeout and said on
    /// standard error; with --watch, a line with its time (RFC 3339, UTC) is written each time the
    /// phase, step, weights, route verification, an analysis verdict or the message changes.
    ///
    /// Exit codes: 0 Healthy (or promoted), 1 Degraded (aborted), 2 usage error, 3 timed out, 4
    /// paused until a person acts, 5 could not read the Rollout (no cluster, not found, refused, or
    /// the API server still failing when --timeout passed).
    Status {
        #[command(flatten)]
        rollout: RolloutArg,
        /// Print a line each time the rollout's state changes while waiting.
        #[arg(short, long)]
        watch: bool,
        /// Give up after this long (for example 30s, 10m, 1h); wait as long as it takes without it.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        timeout: Option<Duration>,
        /// Count a pause for a person as success (exit 0 instead of 4).
        #[arg(long)]
        success_on_pause: bool,
    },
    /// Check Rollouts, analysis templates and routes in files, offline: schemas, references,
    /// args, queries and routes together. Exit codes: 0 no errors (warnings alone pass), 1 errors
    /// found, 2 usage error, 6 a file could not be read.
    Lint(lint::LintArgs),
    /// Write Bellwether manifests from Argo Rollouts' and Flagger's, offline.
    ///
    /// Converts Argo Rollouts' Rollout, AnalysisTemplate and ClusterAnalysisTemplate, and Flagger's
    /// Canary (with its MetricTemplates and Deployment). The manifests go to standard output; every
    /// object that cannot be translated is named on standard error with file:line and the reason,
    /// and nothing is written for it. Exit codes: 0 everything converted (or --allow-partial), 1
    /// something was refused, 2 usage error, 6 a file could not be read.
    Convert(convert::ConvertArgs),
    /// Change the Rollout directly, for clusters without GitOps.
    #[command(subcommand)]
    Set(Set),
    /// Put back the pod template of an earlier revision: by default stable's while a canary is in
    /// progress, the previous stable's otherwise.
    Undo {
        #[command(flatten)]
        rollout: RolloutArg,
        /// The revision to go back to, as status and `bellwether.dev/revision` name it.
        #[arg(long, value_name = "REVISION")]
        to_revision: Option<String>,
    },
    /// Print a shell completion script: `source <(kubectl-bellwether completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the plugin's version and the API version it speaks.
    Version,
}

/// The rollout a command acts on, as kubectl names a resource.
#[derive(clap::Args)]
struct RolloutArg {
    /// NAME, TYPE NAME or TYPE/NAME, with TYPE rollout, rollouts, ro, bwro or
    /// rollouts.bellwether.dev: Bellwether's Rollouts, never Argo Rollouts' of the same name.
    #[arg(value_name = ROLLOUT_VALUE_NAME, num_args = 1..=2, required = true)]
    words: Vec<String>,
}

impl RolloutArg {
    /// The rollout's name; a usage error (exit 2) when the words name no Bellwether Rollout.
    fn name(&self, rule: TypeRule) -> String {
        rollout_name(&self.words, rule).unwrap_or_else(|error| usage_error(error))
    }
}

#[derive(Subcommand)]
enum Set {
    /// Set one container's image: `set image ROLLOUT CONTAINER=IMAGE`, the rollout named as
    /// everywhere else (`web`, `rollout/web`, `bwro web`).
    Image {
        #[command(flatten)]
        rollout: RolloutArg,
        #[arg(value_name = "CONTAINER=IMAGE")]
        assignment: String,
    },
}

/// Prints a usage error as clap prints its own, and exits 2.
fn usage_error(error: impl std::fmt::Display) -> ! {
    Cli::command().error(clap::error::ErrorKind::ValueValidation, error).exit()
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    bellwether::api::Duration::new(text)
        .parse()
        .map_err(|e| e.to_string())?
        .to_std()
        .map_err(|e| e.to_string())
}

#[derive(clap::Args)]
struct Wait {
    /// How long to wait for the controller to handle the request.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    wait_seconds: u64,
}

/// Exit code of an error that is not the request's fault: no cluster, no rollout, no permission.
const FAILURE: u8 = 1;

/// Exit code of a `lint` or `convert` that could not read its files, told apart from one that
/// found errors; the code `bellwether analyze` exits with when it cannot run.
const COULD_NOT_READ: u8 = bellwether::cli::analyze::exit::COULD_NOT_RUN;

/// Whether a command, by its path of subcommand names, wants its rollout named with its type, for
/// completion to offer types first: `get`, as main reads it, takes kubectl's `get TYPE NAME`.
/// Prints a completion's answer and ends the process, unless an answer was printed already: the
/// completion's own, or the one at the deadline. Ending here, rather than returning, does not wait
/// for a lookup still blocked (a credential plugin, a DNS lookup) to finish.
fn answer_once(answer: &str) {
    static ANSWERED: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut answered = ANSWERED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*answered {
        *answered = true;
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(answer.as_bytes());
        let _ = stdout.flush();
        std::process::exit(0);
    }
}

fn type_rule(command: &str) -> TypeRule {
    if command == "get" { TypeRule::Required } else { TypeRule::Optional }
}

#[tokio::main]
async fn main() -> ExitCode {
    // kubectl_complete-bellwether asks for completions with words that need not parse as a command.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == COMPLETE_COMMAND) {
        let words: Vec<String> = args.map(|word| word.to_string_lossy().into_owned()).collect();
        std::thread::spawn(|| {
            std::thread::sleep(complete::DEADLINE);
            answer_once(&complete::nothing());
        });
        answer_once(&complete(&Cli::command(), &words, type_rule).await);
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    let (rollout, action, wait) = match cli.command {
        Command::Version => {
            println!("kubectl-bellwether {} (bellwether.dev/v1alpha1)", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Get { rollout, watch, output } => {
            let name = rollout.name(type_rule("get"));
            return report(
                async {
                    let cluster = connect(&cli.kube).await.map_err(|e| e.to_string())?;
                    let mut screen = Screen::new();
                    let started = chrono::Utc::now();
                    loop {
                        let view = show::fetch_view(&cluster.client, &cluster.namespace, &name)
                            .await
                            .map_err(|e| cluster.explain(&e))?;
                        // Ages tick every second; the frame at a fixed instant changes only when the
                        // rollout does.
                        let content = show::render_view(&view, output, started);
                        screen.show(&show::render_view(&view, output, chrono::Utc::now()), &content);
                        // A pause for a person is where a watcher wants to see what happens next.
                        let done = matches!(
                            status::ending(&view.rollout, false),
                            Some(status::Ending::Healthy(_) | status::Ending::Degraded(_))
                        );
                        if !watch || done {
                            return Ok(String::new());
                        }
                        tokio::time::sleep(REDRAW).await;
                    }
                }
                .await,
            );
        }
        Command::History { rollout, output } => {
            let name = rollout.name(TypeRule::Optional);
            return report(
                async {
                    let cluster = connect(&cli.kube).await.map_err(|e| e.to_string())?;
                    let rollout = show::fetch_rollout(&cluster.client, &cluster.namespace, &name)
                        .await
                        .map_err(|e| cluster.explain(&e))?;
                    print!("{}", history::render(&rollout, output));
                    Ok(String::new())
                }
                .await,
            );
        }
        Command::List { all_namespaces, selector, watch, output } => {
            return report(
                async {
                    let cluster = connect(&cli.kube).await.map_err(|e| e.to_string())?;
                    let scope = (!all_namespaces).then_some(cluster.namespace.as_str());
                    let mut screen = Screen::new();
                    loop {
                        let rollouts = show::fetch_list(&cluster.client, scope, selector.as_deref())
                            .await
                            .map_err(|e| cluster.explain(&e))?;
                        let table = show::render_list(&rollouts, all_namespaces, output);
                        screen.show(&table, &table);
                        if !watch {
                            return Ok(String::new());
                        }
                        tokio::time::sleep(REDRAW).await;
                    }
                }
                .await,
            );
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "kubectl-bellwether", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Set(Set::Image { rollout, assignment }) => {
            let name = rollout.name(TypeRule::Optional);
            return report(
                async {
                    let cluster = connect(&cli.kube).await.map_err(|e| e.to_string())?;
                    let revision = edit::set_image(&cluster.client, &cluster.namespace, &name, &assignment)
                        .await
                        .map_err(|e| cluster.explain(&e))?;
                    Ok(format!("rollout {name}: image set; the template is now revision {revision}"))
                }
                .await,
            );
        }
        Command::Undo { rollout, to_revision } => {
            let name = rollout.name(TypeRule::Optional);
            return report(
                async {
                    let cluster = connect(&cli.kube).await.map_err(|e| e.to_string())?;
                    let revision =
                        edit::undo(&cluster.client, &cluster.namespace, &name, to_revision.as_deref())
                            .await
                            .map_err(|e| cluster.explain(&e))?;
                    Ok(format!("rollout {name}: the template is back to revision {revision}"))
                }
                .await,
            );
        }
        Command::Lint(args) => {
            return match lint::lint(&args, &mut std::io::stdin()) {
                Ok(report) => {
                    match args.output {
                        lint::Output::Text => print!("{}", report.text()),
                        lint::Output::Json => {
                            println!(
                                "{}",
                                serde_json::to_string_pretty(&report).expect("a report serializes")
                            )
                        }
                    }
                    if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(FAILURE) }
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(COULD_NOT_READ)
                }
            };
        }
        Command::Convert(args) => {
            return match convert::convert(&args, &mut std::io::stdin()) {
                Ok(conversion) => {
                    print!("{}", conversion.output);
                    for finding in &conversion.findings {
                        eprintln!("{finding}");
                    }
                    eprintln!("{}", conversion.summary());
                    if conversion.is_complete() || args.allow_partial {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(FAILURE)
                    }
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(COULD_NOT_READ)
                }
            };
        }
        Command::Status { rollout, watch, timeout, success_on_pause } => {
            let name = rollout.name(TypeRule::Optional);
            let options = status::WaitOptions { success_on_pause, timeout, watch };
            let result = async {
                // No call before the first read of the Rollout, which is retried like every other.
                let cluster = client(&cli.kube).await.map_err(|e| e.to_string())?;
                let (mut out, mut notices) = (std::io::stdout(), std::io::stderr());
                status::wait(&cluster, &name, options, &mut out, &mut notices)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            return match result {
                Ok(ending) => {
                    // `status --watch | head -1` closes stdout early: the exit code still tells.
                    let _ = writeln!(std::io::stdout(), "{}", ending.line());
                    ExitCode::from(ending.exit_code())
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(status::exit::COULD_NOT_READ)
                }
            };
        }
        Command::Promote { rollout, full, wait } => {
            (rollout, if full { UserAction::PromoteFull } else { UserAction::Promote }, wait)
        }
        Command::Abort { rollout, wait } => (rollout, UserAction::Abort, wait),
        Command::Retry { rollout, wait } => (rollout, UserAction::Retry, wait),
        Command::Pause { rollout, wait } => (rollout, UserAction::Pause, wait),
        Command::Resume { rollout, wait } => (rollout, UserAction::Resume, wait),
    };
    let name = rollout.name(TypeRule::Optional);
    report(
        async {
            let cluster = connect(&cli.kube).await.map_err(|e| e.to_string())?;
            let wait = Duration::from_secs(wait.wait_seconds);
            steer(&cluster.client, &cluster.namespace, &name, action, wait)
                .await
                .map(|outcome| outcome.message)
                .map_err(|e| cluster.explain(&e))
        }
        .await,
    )
}

/// How often `--watch` reads again.
const REDRAW: Duration = Duration::from_secs(1);

/// Where `get` and `list` draw: on a terminal each frame replaces the last; otherwise (a pipeline's
/// log) a frame is appended only when what it shows has changed, not each time its ages tick.
struct Screen {
    terminal: bool,
    /// What the last frame drawn showed: the frame itself on a terminal, its content otherwise.
    last: String,
}

impl Screen {
    fn new() -> Self {
        Self { terminal: std::io::stdout().is_terminal(), last: String::new() }
    }

    /// Draws `frame`, whose `content` is the frame without what changes by itself (ages).
    fn show(&mut self, frame: &str, content: &str) {
        let shown = if self.terminal { frame } else { content };
        if shown == self.last {
            return;
        }
        if self.terminal {
            // Home the cursor and clear the screen, then draw.
            print!("\x1b[H\x1b[2J{frame}");
        } else {
            if !self.last.is_empty() {
                println!();
            }
            print!("{frame}");
        }
        self.last = shown.to_string();
    }
}

/// Prints a command's result (nothing when it printed its own), or its error, and exits
/// accordingly.
fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(line) => {
            if !line.is_empty() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => fail(error),
    }
}

/// Prints why a command failed, and exits 1.
fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(FAILURE)
}
