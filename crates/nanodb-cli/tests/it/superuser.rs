//! `nanodb superuser create EMAIL PASSWORD`: an upsert, with its input checked.

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
}
