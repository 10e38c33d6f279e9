//! `nanodb superuser create EMAIL [PASSWORD]`: an upsert, with its input checked; the
//! password from the argument, the environment or standard input.

use super::process::run;

#[test]
fn create_then_update_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let created = run(&["superuser", "create", "Root@Example.com", "password-1", "--dir", path]);
    assert!(created.status.success(), "{created:?}");
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(stdout.contains("created superuser"), "{stdout}");
    let updated = run(&["superuser", "create", "root@example.com", "password-2", "--dir", path]);
    assert!(
        String::from_utf8_lossy(&updated.stdout).contains("updated the password"),
        "{updated:?}"
    );
    for (email, password) in [("not-an-email", "password-1"), ("a@b.org", "short")] {
        let refused = run(&["superuser", "create", email, password, "--dir", path]);
        assert!(!refused.status.success(), "{email}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot create the superuser"));
    }
    let usage = run(&["superuser", "create", "only-email"]);
    assert!(!usage.status.success());
    let help = run(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("NANODB_HTTP") && help.contains("127.0.0.1:8090"), "{help}");
    assert!(help.contains("NANODB_DIR") && help.contains("./nanodb_data"), "{help}");
    assert!(help.contains("NANODB_METRICS_TOKEN") && help.contains("--trusted-proxy"), "{help}");
    assert!(help.contains("NANODB_BLOCKING_TASKS"), "{help}");
    assert!(help.contains("NANODB_INLINE_READ_ENTRIES") && help.contains("2048"), "{help}");
}

/// The password from standard input (`-` or omitted) or the environment, so it need not
/// show in `ps`; the argument form still works.
#[test]
fn the_password_comes_from_stdin_or_the_environment() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let piped = |args: &[&str], input: &str| {
        let mut child = super::process::nanodb()
            .args(args)
            .env_remove("NANODB_DIR")
            .env_remove("NANODB_SUPERUSER_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let dash =
        piped(&["superuser", "create", "a@example.com", "-", "--dir", path], "pass-word-1\n");
    assert!(dash.status.success(), "{dash:?}");
    let omitted =
        piped(&["superuser", "create", "b@example.com", "--dir", path], "pass-word-2\r\n");
    assert!(omitted.status.success(), "{omitted:?}");
    let short = piped(&["superuser", "create", "c@example.com", "--dir", path], "short\n");
    assert!(!short.status.success(), "{short:?}");
    let env = super::process::nanodb()
        .args(["superuser", "create", "d@example.com", "--dir", path])
        .env("NANODB_SUPERUSER_PASSWORD", "pass-word-4")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(env.status.success(), "{env:?}");
    let help = run(&["superuser", "create", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("ps") && help.contains("NANODB_SUPERUSER_PASSWORD"), "{help}");
    // Each password was stored as given: a server started on the directory lets them in.
    let mut served = super::process::Served::start(dir.path());
    for (email, password) in [("a", "pass-word-1"), ("b", "pass-word-2"), ("d", "pass-word-4")] {
        let body = format!("{{\"identity\":\"{email}@example.com\",\"password\":\"{password}\"}}");
        let (status, text) =
            served.request("POST", "/api/collections/_superusers/auth-with-password", &body);
        assert_eq!(status, 200, "{email}: {text}");
    }
    assert!(served.terminate());
}
