//! Support for exo's end-to-end tests.
//!
//! Tests run the real `exo` binary as a subprocess against real plugin libraries. The workspace
//! is built once per test run (`cargo build --workspace --all-targets`, the same command as
//! `cargo xtask ci`, so it is a no-op after CI's build); each test then gets its own throwaway
//! layout: `bin/exo` (a hard link to the built binary, so that "next to the executable" means
//! this test's `bin/plugins/`), the plugins it chooses, and an empty home directory.
//!
//! Every `exo` a test runs also writes its `-vvv` log to the test's own file (`EXO_LOG_FILE`),
//! and keeps its stderr there too. When the test ends, that text is searched for every secret
//! the test handled ([`TestEnv::watch`], token files, secret variables, stdin), anything shaped
//! like a JWT or a private key, and, with a sandbox, every token and code it issued and every
//! seeded password: the whole suite is a `-vvv` leak check.

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub mod browser;

/// `target/<profile>`, where the binaries and plugin libraries are.
pub fn profile_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // The test binary is target/<profile>/deps/e2e-<hash>.
        let exe = std::env::current_exe().expect("the test binary knows its path");
        exe.parent()
            .and_then(Path::parent)
            .expect("tests run from target/<profile>/deps")
            .to_owned()
    })
}

/// Builds the workspace once per test run. Under nextest every test is a process of its own,
/// so a marker file named after the run id (behind a file lock) says the build is done.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let marker = std::env::var("NEXTEST_RUN_ID")
            .ok()
            .map(|id| dir.join(format!(".e2e-built-{id}")));
        if marker.as_deref().is_some_and(Path::exists) {
            return;
        }
        let lock =
            std::fs::File::create(dir.join(".e2e-build.lock")).expect("create the build lock");
        lock.lock().expect("take the build lock");
        if marker.as_deref().is_some_and(Path::exists) {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--target-dir",
        ]);
        build.arg(dir.parent().expect("target/<profile> has a parent"));
        match dir.file_name().and_then(OsStr::to_str) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(profile) => {
                build.args(["--profile", profile]);
            }
            None => panic!("unexpected target directory {}", dir.display()),
        }
        let status = build.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build --workspace failed; the end-to-end tests need its output"
        );
        if let Some(marker) = marker {
            std::fs::write(marker, b"").expect("write the build marker");
        }
    });
}

/// The built library of plugin or fixture `crate_name` (e.g. `access-token`).
pub fn library(crate_name: &str) -> PathBuf {
    ensure_built();
    let path = profile_dir().join(library_file_name(crate_name));
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

pub use exo::discovery::library_file_name;

/// One test's world: its own `exo`, plugin folder and home directory.
pub struct TestEnv {
    root: tempfile::TempDir,
    watch: Arc<Watch>,
}

/// What exo wrote that must not hold a secret, and the secrets to look for.
#[derive(Debug)]
struct Watch {
    /// `-vvv` logs (`EXO_LOG_FILE`) and the stderr of every finished run.
    transcript: PathBuf,
    secrets: Mutex<Vec<String>>,
}

impl Watch {
    /// Remembers `secret` (too short a value would match by chance, so it is ignored).
    fn add(&self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= 6 {
            self.secrets
                .lock()
                .expect("the watch list")
                .push(secret.to_owned());
        }
    }
}

impl TestEnv {
    /// A layout with the given plugins bundled next to `exo`.
    pub fn with_plugins(plugins: &[&str]) -> Self {
        ensure_built();
        let scratch = profile_dir().join("e2e");
        std::fs::create_dir_all(&scratch).expect("create the scratch dir");
        let root = tempfile::Builder::new()
            .prefix("t")
            .tempdir_in(&scratch)
            .expect("create a temp dir");
        let watch = Arc::new(Watch {
            transcript: root.path().join("exo-transcript.log"),
            secrets: Mutex::new(Vec::new()),
        });
        let env = Self { root, watch };
        std::fs::create_dir_all(env.bundled_plugins()).expect("create bin/plugins");
        let exe = format!("exo{}", std::env::consts::EXE_SUFFIX);
        let built = profile_dir().join(&exe);
        let linked = env.bin().join(&exe);
        if std::fs::hard_link(&built, &linked).is_err() {
            std::fs::copy(&built, &linked).expect("copy exo");
        }
        for dir in [env.home(), env.data_home()] {
            std::fs::create_dir_all(dir).expect("create the home dirs");
        }
        for plugin in plugins {
            env.install(plugin, &env.bundled_plugins());
        }
        env
    }

    /// The test's root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The folder holding `exo`.
    pub fn bin(&self) -> PathBuf {
        self.root().join("bin")
    }

    /// The `plugins/` folder next to `exo`.
    pub fn bundled_plugins(&self) -> PathBuf {
        self.bin().join("plugins")
    }

    /// `$HOME`.
    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    /// `$XDG_DATA_HOME`.
    pub fn data_home(&self) -> PathBuf {
        self.home().join(".local/share")
    }

    /// Copies the built library of `name` into `dir` (created if needed); returns its path.
    pub fn install(&self, name: &str, dir: &Path) -> PathBuf {
        self.install_as(name, dir, &library_file_name(name))
    }

    /// Copies the built library of `name` into `dir` under `file_name`.
    pub fn install_as(&self, name: &str, dir: &Path, file_name: &str) -> PathBuf {
        std::fs::create_dir_all(dir).expect("create the plugin dir");
        let target = dir.join(file_name);
        std::fs::copy(library(name), &target).expect("copy the plugin");
        target
    }

    /// Adds `secret` to what must never appear in exo's logs or stderr.
    pub fn watch(&self, secret: &str) {
        self.watch.add(secret);
    }

    /// Everything exo's runs logged at `-vvv` and wrote on stderr so far.
    pub fn transcript(&self) -> String {
        std::fs::read(&self.watch.transcript)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The secrets found in [`Self::transcript`]: watched ones, `extra` ones (for a JWT, its
    /// unsigned part is enough to count), and anything shaped like a JWT or a private key.
    pub fn leaks(&self, extra: &[String]) -> Vec<String> {
        let mut secrets = self.watch.secrets.lock().expect("the watch list").clone();
        secrets.extend_from_slice(extra);
        leaks_in(&self.transcript(), &secrets)
    }

    /// Fails the test if [`Self::leaks`] finds anything.
    #[track_caller]
    pub fn assert_no_leaks(&self, extra: &[String]) {
        let leaks = self.leaks(extra);
        assert!(
            leaks.is_empty(),
            "exo's -vvv log or stderr ({}) holds secrets: {leaks:?}",
            self.watch.transcript.display()
        );
    }

    /// A new `exo` command in this world (no `EXO_*` variables from the caller).
    pub fn exo(&self) -> Exo {
        let mut command = Command::new(
            self.bin()
                .join(format!("exo{}", std::env::consts::EXE_SUFFIX)),
        );
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("EXO_") {
                command.env_remove(&key);
            }
        }
        command
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.data_home())
            .env("XDG_STATE_HOME", self.home().join(".local/state"))
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_CACHE_HOME", self.home().join(".cache"))
            .env("EXO_LOG_FILE", &self.watch.transcript)
            .env_remove("RUST_BACKTRACE")
            .current_dir(self.root());
        Exo {
            command,
            stdin: None,
            watch: self.watch.clone(),
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_leaks(&[]);
        }
    }
}

/// The `secrets` found in `transcript` (for a JWT, its unsigned part is enough to count), and
/// anything there shaped like a JWT or a private key.
fn leaks_in(transcript: &str, secrets: &[String]) -> Vec<String> {
    let mut leaks: Vec<String> = secrets
        .iter()
        .map(|secret| {
            secret
                .rsplit_once('.')
                .filter(|(head, _)| head.contains('.'))
                .map_or(secret.as_str(), |(head, _)| head)
        })
        .filter(|secret| transcript.contains(secret))
        .map(str::to_owned)
        .collect();
    leaks.extend(jwt_shapes(transcript));
    if transcript.contains("PRIVATE KEY") {
        leaks.push("a PEM private key".to_owned());
    }
    leaks
}

/// Every `header.payload` pair of base64url JSON objects in `text`: what a JWT looks like.
fn jwt_shapes(text: &str) -> Vec<String> {
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        let candidate = &rest[start..];
        let header_end = candidate.find(|c| !base64url(c)).unwrap_or(candidate.len());
        let after = &candidate[header_end..];
        if header_end >= 10
            && let Some(payload) = after.strip_prefix(".eyJ")
            && payload.chars().take_while(|c| base64url(*c)).count() >= 10
        {
            found.push(format!("a JWT ({}…)", &candidate[..10]));
        }
        rest = &candidate[3..];
    }
    found
}

/// An `exo` command being set up.
pub struct Exo {
    command: Command,
    stdin: Option<Vec<u8>>,
    watch: Arc<Watch>,
}

impl Exo {
    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Adds a path argument.
    pub fn arg_path(mut self, path: &Path) -> Self {
        self.command.arg(path);
        self
    }

    /// Sets an environment variable; the value of one named like a secret (`…PASSWORD`,
    /// `…_TOKEN`, `…_SECRET`) is watched.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        if ["PASSWORD", "_TOKEN", "_SECRET"]
            .iter()
            .any(|suffix| key.ends_with(suffix))
        {
            self.watch.add(&value.as_ref().to_string_lossy());
        }
        self.command.env(key, value);
        self
    }

    /// Feeds `input` on stdin; each line of it is watched as a secret.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        let input = input.into();
        String::from_utf8_lossy(&input)
            .lines()
            .for_each(|line| self.watch.add(line));
        self.stdin = Some(input);
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    /// Runs it in the working directory `dir`.
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Runs it on a pseudo-terminal (with `script` from util-linux), so that it sees a person:
    /// stdin goes to the terminal, and both stdout and stderr come back on stdout, unless
    /// `stdout_to` sends stdout to a file.
    pub fn in_terminal(self, stdout_to: Option<&Path>) -> Self {
        let quote = |word: &OsStr| format!("'{}'", word.to_string_lossy().replace('\'', "'\\''"));
        let mut line: Vec<String> = std::iter::once(self.command.get_program())
            .chain(self.command.get_args())
            .map(quote)
            .collect();
        if let Some(file) = stdout_to {
            line.push(format!("> {}", quote(file.as_os_str())));
        }
        let mut command = Command::new("script");
        command.args(["-qec", &line.join(" "), "/dev/null"]);
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = self.command.get_current_dir() {
            command.current_dir(dir);
        }
        Self {
            command,
            stdin: self.stdin,
            watch: self.watch,
        }
    }

    /// The command as it stands, for callers that run it their own way (benchmarks, which
    /// measure exo without the test log).
    pub fn into_command(mut self) -> Command {
        self.command.env_remove("EXO_LOG_FILE");
        self.command
    }

    /// Starts it with stdout and stderr piped, for tests that act while it runs.
    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.command.spawn().expect("start exo")
    }

    /// Starts it with stdin, stdout and stderr piped, for tests that answer prompts.
    pub fn spawn_with_stdin(mut self) -> std::process::Child {
        self.command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.command.spawn().expect("start exo")
    }

    /// Runs it to completion.
    pub fn run(mut self) -> Run {
        self.command.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        self.command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("start exo");
        if let Some(input) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin.write_all(&input).expect("write stdin");
        }
        let output = child.wait_with_output().expect("wait for exo");
        let mut transcript = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.watch.transcript)
            .expect("open the test's transcript");
        transcript
            .write_all(&output.stderr)
            .expect("keep exo's stderr");
        Run {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// What a finished `exo` printed and returned.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns `self`.
    #[track_caller]
    pub fn success(self) -> Self {
        assert!(
            self.status.success(),
            "exo failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts an ordinary failure (exit code `code`, not a signal or abort) and returns `self`.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Answers each of `prompts` (text to wait for, then the line to type) on a terminal started
/// with [`Exo::in_terminal`] and [`Exo::spawn_with_stdin`], as a person would; then waits for
/// exo to end. Returns whether it succeeded, and everything the terminal showed.
pub fn answer_prompts(mut child: std::process::Child, prompts: &[(&str, &str)]) -> (bool, String) {
    use std::io::Read as _;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut output = child.stdout.take().expect("piped stdout");
    let mut seen = Vec::new();
    for (prompt, answer) in prompts {
        while !String::from_utf8_lossy(&seen).contains(prompt) {
            let mut byte = [0u8; 1];
            assert_eq!(
                output.read(&mut byte).expect("read the terminal"),
                1,
                "exo ended before asking {prompt:?}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.push(byte[0]);
        }
        // A person reads the prompt before typing. rpassword writes the prompt and then turns
        // echo off, so an answer typed within microseconds of the prompt would be echoed by the
        // terminal before exo hid it; this pause is the reader, not a timing assertion.
        std::thread::sleep(std::time::Duration::from_millis(300));
        writeln!(stdin, "{answer}").expect("type at the terminal");
    }
    output.read_to_end(&mut seen).expect("read the terminal");
    let success = child.wait().expect("wait for exo").success();
    (success, String::from_utf8_lossy(&seen).into_owned())
}

/// Presses Ctrl-C (SIGINT, as a terminal sends it) in `child` once it has run for 1.5 s; it
/// must end within 3 s (else it is killed and the test fails). Returns its exit code and
/// stderr.
pub fn interrupt(mut child: std::process::Child) -> (Option<i32>, String) {
    use std::io::Read as _;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = std::time::Instant::now();
    // SAFETY: signalling our own child process.
    assert_eq!(
        unsafe { libc::kill(i32::try_from(child.id()).expect("a pid"), libc::SIGINT) },
        0
    );
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for exo") {
            break status;
        }
        if sent.elapsed() > std::time::Duration::from_secs(3) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("exo went on for 3 s after Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), stderr)
}

/// Waits (up to 20 s) until one of `child`'s threads is blocked writing to a full pipe.
pub fn wait_for_a_full_pipe(child: &std::process::Child) {
    let tasks = PathBuf::from(format!("/proc/{}/task", child.id()));
    let started = std::time::Instant::now();
    loop {
        let blocked = std::fs::read_dir(&tasks)
            .into_iter()
            .flatten()
            .flatten()
            .any(|task| {
                std::fs::read_to_string(task.path().join("wchan"))
                    .is_ok_and(|wchan| wchan.contains("pipe_write"))
            });
        if blocked {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "exo never filled the pipe"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Makes a named pipe at `path` (`mkfifo`): a secret file that can be read only once.
pub fn make_fifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// An unsigned JWT with `claims` (for the access-token plugin, which does not verify).
pub fn unsigned_jwt(claims: &serde_json::Value) -> String {
    let encode = |value: &serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJl",
        encode(&serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        encode(claims)
    )
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A test world with a running sandbox tenant: `exo` finds it as `--environment sandbox`.
pub struct SandboxEnv {
    /// The test's own exo layout (with the access-token plugin bundled).
    pub env: TestEnv,
    /// The sandbox, on an ephemeral loopback port; stopped on drop.
    pub sandbox: sandbox::RunningSandbox,
}

impl SandboxEnv {
    /// Everything secret the sandbox knows: the tokens and codes it issued, its seeded
    /// passwords, TOTP and client secrets, and its managed-identity header.
    pub fn sandbox_secrets(&self) -> Vec<String> {
        let seed = self.sandbox.seed();
        let mut secrets = self.sandbox.issued_secrets();
        for tenant in &seed.tenants {
            for user in &tenant.users {
                secrets.push(user.password.clone());
                secrets.extend(user.totp_secret.clone());
            }
            for app in &tenant.apps {
                secrets.extend(app.client_secrets.iter().cloned());
            }
        }
        secrets.push(self.sandbox.identity_header().to_owned());
        secrets
    }
}

impl Drop for SandboxEnv {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.env.assert_no_leaks(&self.sandbox_secrets());
        }
    }
}

/// The seeded app registration that may run Exchange cmdlets app-only.
pub const CONTOSO_APP: &str = "exo-automation";
/// The partner's app registration, with delegated access to contoso.
pub const PARTNER_APP: &str = "fabrikam-msp-tool";

impl SandboxEnv {
    /// A sandbox with the default seed, changed by `configure` (token lifetimes, generated
    /// mailboxes or tenants, …).
    pub fn start(configure: impl FnOnce(&mut sandbox::SandboxConfig)) -> Self {
        let env = TestEnv::with_plugins(&["access-token"]);
        let mut config = sandbox::SandboxConfig::new(env.root().join("sandbox"));
        // RSA keys and the CA are made once and shared by every test of every run.
        config.keys_dir = Some(profile_dir().join("e2e-sandbox-keys"));
        // The secrecy tests grep exo's output for every token the sandbox issued.
        config.record_secrets = true;
        configure(&mut config);
        let sandbox = sandbox::spawn(config).expect("start the sandbox");
        Self { env, sandbox }
    }

    /// An `exo` command that talks to this sandbox.
    pub fn exo(&self) -> Exo {
        self.env
            .exo()
            .env("EXO_SANDBOX_DIR", self.sandbox.state_dir())
            .env("EXO_ENVIRONMENT", "sandbox")
    }

    /// A fresh app-only access token for `app` (a seeded app's display name) in `tenant`,
    /// obtained over the real client-credentials flow, for `scope`.
    pub fn app_token_for(&self, tenant: &str, app: &str, scope: &str) -> String {
        self.app_token_in(sandbox::Cloud::Global, tenant, app, scope)
    }

    /// Like [`Self::app_token_for`], from the sign-in endpoint of `cloud`.
    pub fn app_token_in(
        &self,
        cloud: sandbox::Cloud,
        tenant: &str,
        app: &str,
        scope: &str,
    ) -> String {
        let seed = self.sandbox.seed();
        let app = seed
            .tenants
            .iter()
            .flat_map(|t| &t.apps)
            .find(|a| a.display_name == app)
            .unwrap_or_else(|| panic!("no seeded app {app}"));
        let read = |path: &Option<PathBuf>| {
            std::fs::read_to_string(path.as_ref().expect("the app has a certificate"))
                .expect("read the app's PEM")
        };
        sandbox::client::client_credentials_token(
            &self.sandbox.cloud_url(cloud),
            self.sandbox.ca_pem(),
            tenant,
            &app.client_id.to_string(),
            &read(&app.certificate_file),
            &read(&app.key_file),
            scope,
        )
        .expect("the sandbox issues a token")
        .access_token
    }

    /// A fresh Exchange token for the contoso automation app.
    pub fn app_token(&self) -> String {
        self.app_token_for(
            "contoso.onmicrosoft.com",
            CONTOSO_APP,
            "https://outlook.office365.com/.default",
        )
    }

    /// Writes `token` to a new file under the test's root and returns its path.
    pub fn token_file(&self, name: &str, token: &str) -> PathBuf {
        self.env.watch(token);
        let path = self.env.root().join(name);
        std::fs::write(&path, token).expect("write the token file");
        path
    }

    /// Connects with `token` (read from a file named `name`) and `args`; returns the run.
    pub fn connect_with(&self, name: &str, token: &str, args: &[&str]) -> Run {
        let file = self.token_file(name, token);
        self.exo()
            .args(["connect", "--method", "access-token", "--access-token-file"])
            .arg_path(&file)
            .args(args)
            .run()
    }

    /// Connects the contoso automation app and returns the connection's id.
    pub fn connect(&self) -> String {
        let run = self
            .connect_with("contoso.jwt", &self.app_token(), &[])
            .success();
        assert!(
            run.stdout.starts_with("Connected ExchangeOnline_"),
            "{}",
            run.stdout
        );
        self.connection_ids().pop().expect("a connection")
    }

    /// `exo connections --output json`.
    pub fn connections(&self) -> serde_json::Value {
        self.exo()
            .args(["connections", "--output", "json"])
            .run()
            .success()
            .json()
    }

    /// The ConnectionIds exo has, oldest first.
    pub fn connection_ids(&self) -> Vec<String> {
        self.connections()
            .as_array()
            .expect("a JSON array")
            .iter()
            .map(|c| c["ConnectionId"].as_str().expect("an id").to_owned())
            .collect()
    }

    /// exo's state directory (where the token cache is).
    pub fn exo_state(&self) -> PathBuf {
        self.env.home().join(".local/state/exo")
    }

    /// The InvokeCommand requests the sandbox received, in order.
    pub fn invocations(&self) -> Vec<sandbox::RequestRecord> {
        self.sandbox
            .request_log()
            .into_iter()
            .filter(|r| r.path.contains("/InvokeCommand"))
            .collect()
    }
}

/// A minimal HTTP CONNECT proxy on loopback that records the targets it was asked for.
pub struct ConnectProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    /// Starts the proxy on an ephemeral port; it runs until the test process ends.
    pub fn start() -> Self {
        use std::io::{BufRead as _, BufReader};
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let recorded = recorded.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(client.try_clone().expect("clone the socket"));
                    let mut request = String::new();
                    while reader.read_line(&mut request).is_ok_and(|n| n > 0)
                        && !request.ends_with("\r\n\r\n")
                    {}
                    let target = request
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    recorded
                        .lock()
                        .expect("the proxy's log")
                        .push(target.clone());
                    let Ok(server) = TcpStream::connect(&target) else {
                        return;
                    };
                    let mut client = client;
                    if client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                    let (mut from_server, mut to_client) = (
                        server.try_clone().expect("clone"),
                        client.try_clone().expect("clone"),
                    );
                    std::thread::spawn(move || std::io::copy(&mut from_server, &mut to_client));
                    // The reader still holds whatever the client sent after the request.
                    let mut to_server = server;
                    let _ = std::io::copy(&mut reader, &mut to_server);
                });
            }
        });
        Self { url, seen }
    }

    /// The `host:port` targets asked for so far.
    pub fn targets(&self) -> Vec<String> {
        self.seen.lock().expect("the proxy's log").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leak_check_finds_watched_secrets_jwts_and_keys_and_nothing_else() {
        let jwt = unsigned_jwt(&serde_json::json!({"tid": "x", "upn": "a@b"}));
        let (head, _) = jwt.rsplit_once('.').expect("a JWT");
        let clean = "DEBUG exo::http: → POST https://127.0.0.1/x\nTRACE exo::http: → Authorization: [redacted]\n";
        assert!(leaks_in(clean, &["s3cret!".to_owned()]).is_empty());
        // The unsigned part of an issued token is a leak without its signature, and is also
        // recognised as a JWT by its shape alone.
        let with_token = format!("{clean}← {{\"access_token\":\"{head}\"}}");
        assert_eq!(leaks_in(&with_token, std::slice::from_ref(&jwt)).len(), 2);
        assert_eq!(leaks_in(&with_token, &[]).len(), 1);
        assert_eq!(
            leaks_in(&format!("{clean}password=s3cret!"), &["s3cret!".to_owned()]),
            ["s3cret!"]
        );
        assert_eq!(
            leaks_in("-----BEGIN PRIVATE KEY-----", &[]),
            ["a PEM private key"]
        );
        // "eyJ" alone, or one base64url JSON object, is not a JWT.
        assert!(leaks_in("eyJhbGciOiJIUzI1NiJ9 and eyJ.eyJ", &[]).is_empty());
    }
}
