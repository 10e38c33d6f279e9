//! Auth: password login, refresh, the login alias, password changes, the auth rule, email
//! visibility, superusers (CLI upsert and first-run install token), the hashing cap.

use super::server::{test_config, TestServer, ADMIN_EMAIL, ADMIN_PASSWORD};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value as Json};

/// The claims of a token, decoded without checking it.
pub fn claims(token: &str) -> Json {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn password_login_returns_record_and_token() {
    let server = TestServer::start();
    let (_, user) = server.user("users", "u@example.com", "password-1");
    let response = server.login("users", "u@example.com", "password-1");
    assert_eq!(response.status, 200);
    let body = response.json();
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    let claims = claims(token);
    assert_eq!(claims["type"], "auth");
    assert_eq!(claims["id"], user["id"]);
    assert_eq!(claims["collectionId"], "_pb_users_auth_");
    assert_eq!(claims["refreshable"], true);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let exp = claims["exp"].as_i64().unwrap();
    assert!((now + 432_000 - 5..=now + 432_000 + 5).contains(&exp), "5 days: {exp} vs {now}");
    let keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["collectionId", "exp", "id", "refreshable", "type"]);
    let record = &body["record"];
    assert_eq!(record["email"], "u@example.com");
    assert_eq!(record["verified"], false);
    assert!(record.get("password").is_none() && record.get("tokenKey").is_none(), "{record}");
    let admin = server.login("_superusers", ADMIN_EMAIL, ADMIN_PASSWORD).json();
    assert_eq!(claims_of(&admin)["collectionId"], "pbc_3142635823");
    let admin_exp = claims_of(&admin)["exp"].as_i64().unwrap();
    assert!((now + 86_400 - 5..=now + 86_400 + 5).contains(&admin_exp), "superusers: 1 day");
}

fn claims_of(body: &Json) -> Json {
    claims(body["token"].as_str().unwrap())
}

#[test]
fn bad_credentials_fail_the_same_way() {
    let server = TestServer::start();
    server.user("users", "u@example.com", "password-1");
    let expected = json!({"data": {}, "message": "Failed to authenticate.", "status": 400});
    for (email, password) in [
        ("u@example.com", "wrong-pass"),
        ("nobody@example.com", "password-1"),
        ("", ""),
        ("u@example.com", ""),
    ] {
        let response = server.login("users", email, password);
        assert_eq!(response.status, 400, "{email}");
        assert_eq!(response.json(), expected, "{email}");
    }
    let superuser_via_users = server.login("users", ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(superuser_via_users.status, 400, "a superuser is not a user");
    let case = server.login("users", "  U@Example.COM ", "password-1");
    assert_eq!(case.status, 200, "emails are matched in lower case");
    let other_field = server
        .post("/api/collections/users/auth-with-password")
        .json(&json!({"identity": "u", "password": "password-1", "identityField": "username"}))
        .send();
    assert_eq!(other_field.status, 400);
}

#[test]
fn auth_endpoints_need_an_auth_collection() {
    let server = TestServer::start();
    let admin = server.admin();
    server.create_collection(&admin, json!({"name": "posts"}));
    for path in [
        "/api/collections/posts/auth-with-password",
        "/api/collections/ghost/auth-with-password",
        "/api/collections/posts/auth-refresh",
    ] {
        let response = server
            .post(path)
            .auth(Some(&admin))
            .json(&json!({"identity": "a", "password": "b"}))
            .send();
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.json()["message"], "Missing or invalid auth collection context.");
    }
}

#[test]
fn refresh_issues_a_new_token_for_the_same_record() {
    let server = TestServer::start();
    let (token, user) = server.user("users", "u@example.com", "password-1");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let refreshed = server
        .post("/api/collections/users/auth-refresh")
        .auth(Some(&token))
        .raw("application/json", "")
        .send();
    assert_eq!(refreshed.status, 200, "{}", refreshed.json());
    let body = refreshed.json();
    assert_eq!(body["record"]["id"], user["id"]);
    assert_eq!(body["record"]["email"], "u@example.com");
    let new_token = body["token"].as_str().unwrap();
    assert!(claims(new_token)["exp"].as_i64() > claims(&token)["exp"].as_i64());
    let bearer = server
        .post("/api/collections/users/auth-refresh")
        .auth(Some(&format!("Bearer {new_token}")))
        .send();
    assert_eq!(bearer.status, 200, "an optional Bearer prefix is accepted");
    let guest = server.post("/api/collections/users/auth-refresh").send();
    assert_eq!(guest.status, 401);
    assert_eq!(guest.json()["message"], "The request requires valid record authorization token.");
    let admin = server.admin();
    let wrong_collection =
        server.post("/api/collections/users/auth-refresh").auth(Some(&admin)).send();
    assert_eq!(wrong_collection.status, 403);
    assert_eq!(
        wrong_collection.json()["message"],
        "The request requires auth record from users collection."
    );
}

#[test]
fn login_alias_takes_email_password_and_collection() {
    let server = TestServer::start();
    server.user("users", "u@example.com", "password-1");
    let response = server
        .post("/api/auth/login")
        .json(&json!({"email": "u@example.com", "password": "password-1"}))
        .send();
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["record"]["collectionName"], "users");
    let admin = server
        .post("/api/auth/login")
        .json(
            &json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "collection": "_superusers"}),
        )
        .send();
    assert_eq!(admin.status, 200);
    let bad = server
        .post("/api/auth/login")
        .json(&json!({"email": "u@example.com", "password": "nope-nope"}))
        .send();
    assert_eq!(bad.status, 400);
}

#[test]
fn password_changes_need_the_old_password_and_revoke_old_tokens() {
    let server = TestServer::start();
    let (token, user) = server.user("users", "u@example.com", "password-1");
    let path = format!("/api/collections/users/records/{}", user["id"].as_str().unwrap());
    let change = |old: Option<&str>| {
        let mut body = json!({"password": "password-2", "passwordConfirm": "password-2"});
        if let Some(old) = old {
            body["oldPassword"] = json!(old);
        }
        server.patch(&path).auth(Some(&token)).json(&body).send()
    };
    for old in [None, Some("wrong-password")] {
        let response = change(old);
        assert_eq!(response.status, 400, "{old:?}");
        assert_eq!(
            response.json()["data"]["oldPassword"]["code"],
            "validation_invalid_old_password"
        );
    }
    let mismatch = server
        .patch(&path)
        .auth(Some(&token))
        .json(&json!({"password": "password-2", "passwordConfirm": "password-3", "oldPassword": "password-1"}))
        .send();
    assert_eq!(mismatch.json()["data"]["passwordConfirm"]["code"], "validation_values_mismatch");
    assert_eq!(server.get(&path).auth(Some(&token)).send().status, 200, "the token still works");
    let changed = change(Some("password-1"));
    assert_eq!(changed.status, 200, "{}", changed.json());
    assert!(changed.json().get("password").is_none());
    assert_eq!(
        server.get(&path).auth(Some(&token)).send().status,
        404,
        "the old token is a guest's now"
    );
    assert_eq!(
        server.post("/api/collections/users/auth-refresh").auth(Some(&token)).send().status,
        401
    );
    assert_eq!(server.login("users", "u@example.com", "password-1").status, 400);
    assert_eq!(server.login("users", "u@example.com", "password-2").status, 200);
    let admin = server.admin();
    let reset = server
        .patch(&path)
        .auth(Some(&admin))
        .json(&json!({"password": "password-3", "passwordConfirm": "password-3", "verified": true}))
        .send();
    assert_eq!(reset.status, 200, "superusers need no old password");
    assert_eq!(reset.json()["verified"], true);
    assert_eq!(server.login("users", "u@example.com", "password-3").status, 200);
}

#[test]
fn users_cannot_verify_themselves_or_change_their_email() {
    let server = TestServer::start();
    let (token, user) = server.user("users", "u@example.com", "password-1");
    let path = format!("/api/collections/users/records/{}", user["id"].as_str().unwrap());
    let verified =
        server.patch(&path).auth(Some(&token)).json(&json!({"verified": true, "name": "U"})).send();
    assert_eq!(verified.status, 200);
    assert_eq!(verified.json()["verified"], false, "verified is for managers");
    assert_eq!(verified.json()["name"], "U");
    let email =
        server.patch(&path).auth(Some(&token)).json(&json!({"email": "new@example.com"})).send();
    assert_eq!(email.status, 400);
    assert!(email.json()["data"]["email"]["code"].is_string());
    let same =
        server.patch(&path).auth(Some(&token)).json(&json!({"email": "U@example.com"})).send();
    assert_eq!(same.status, 200, "the same email (any case) is no change");
}

#[test]
fn sign_up_checks_email_and_password() {
    let server = TestServer::start();
    let cases = [
        (
            json!({"password": "password-1", "passwordConfirm": "password-1"}),
            "email",
            "validation_required",
        ),
        (
            json!({"email": "nope", "password": "password-1", "passwordConfirm": "password-1"}),
            "email",
            "validation_is_email",
        ),
        (json!({"email": "a@b.org"}), "password", "validation_required"),
        (
            json!({"email": "a@b.org", "password": "short", "passwordConfirm": "short"}),
            "password",
            "validation_min_text_constraint",
        ),
        (
            json!({"email": "a@b.org", "password": "password-1"}),
            "passwordConfirm",
            "validation_values_mismatch",
        ),
    ];
    for (body, field, code) in cases {
        let response = server.post("/api/collections/users/records").json(&body).send();
        assert_eq!(response.status, 400, "{body}");
        assert_eq!(response.json()["data"][field]["code"], code, "{body}");
    }
    let ok = server
        .post("/api/collections/users/records")
        .json(&json!({"email": "A@B.org", "password": "password-1", "passwordConfirm": "password-1", "verified": true}))
        .send();
    assert_eq!(ok.status, 200);
    let record = ok.json();
    assert!(record.get("email").is_none(), "a guest does not see an email that is not visible");
    assert_eq!(record["verified"], false, "guests cannot verify");
    let again = server
        .post("/api/collections/users/records")
        .json(
            &json!({"email": "a@b.org", "password": "password-1", "passwordConfirm": "password-1"}),
        )
        .send();
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["data"]["email"]["code"], "validation_not_unique");
}

#[test]
fn email_visibility_decides_who_sees_emails() {
    let server = TestServer::start();
    let admin = server.admin();
    let opened = server
        .patch("/api/collections/users")
        .auth(Some(&admin))
        .json(&json!({"listRule": "", "viewRule": ""}))
        .send();
    assert_eq!(opened.status, 200);
    let (a_token, a) = server.user("users", "a@example.com", "password-1");
    let (_, b) = server.user("users", "b@example.com", "password-1");
    let view = |id: &Json, token: Option<&str>| {
        server
            .get(&format!("/api/collections/users/records/{}", id.as_str().unwrap()))
            .auth(token)
            .send()
            .json()
    };
    assert!(view(&b["id"], Some(&a_token)).get("email").is_none());
    assert_eq!(view(&a["id"], Some(&a_token))["email"], "a@example.com", "one's own email");
    assert_eq!(view(&b["id"], Some(&admin))["email"], "b@example.com");
    server
        .patch(&format!("/api/collections/users/records/{}", b["id"].as_str().unwrap()))
        .auth(Some(&admin))
        .json(&json!({"emailVisibility": true}))
        .send();
    assert_eq!(view(&b["id"], None)["email"], "b@example.com");
}

#[test]
fn the_auth_rule_decides_who_may_log_in() {
    let server = TestServer::start();
    let admin = server.admin();
    server.user("users", "u@example.com", "password-1");
    let set = |rule: Json| {
        let response = server
            .patch("/api/collections/users")
            .auth(Some(&admin))
            .json(&json!({"authRule": rule}))
            .send();
        assert_eq!(response.status, 200, "{}", response.json());
    };
    set(json!("verified = true"));
    let refused = server.login("users", "u@example.com", "password-1");
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.json()["message"],
        "The request doesn't satisfy the collection requirements to authenticate."
    );
    set(json!(null));
    assert_eq!(server.login("users", "u@example.com", "password-1").status, 403);
    set(json!(""));
    assert_eq!(server.login("users", "u@example.com", "password-1").status, 200);
    let disabled = server
        .patch("/api/collections/users")
        .auth(Some(&admin))
        .json(&json!({"passwordAuth": {"enabled": false}}))
        .send();
    assert_eq!(disabled.status, 200);
    assert_eq!(server.login("users", "u@example.com", "password-1").status, 403);
}

/// The authRule is checked again at a refresh (a record that no longer passes it gets no new
/// token), and a login checks it with `@request.context` = `password`.
#[test]
fn the_auth_rule_applies_to_refreshes_and_sees_the_password_context() {
    let server = TestServer::start();
    let admin = server.admin();
    let (token, _) = server.user("users", "u@example.com", "password-1");
    let set = |rule: &str| {
        let body = json!({"authRule": rule});
        let response = server.patch("/api/collections/users").auth(Some(&admin)).json(&body).send();
        assert_eq!(response.status, 200, "{}", response.json());
    };
    let refresh =
        |token: &str| server.post("/api/collections/users/auth-refresh").auth(Some(token)).send();
    set("@request.context = 'password'");
    let login = server.login("users", "u@example.com", "password-1");
    assert_eq!(login.status, 200, "{}", login.json());
    let refused = refresh(&token);
    assert_eq!(refused.status, 403, "a refresh runs in the default context");
    assert_eq!(
        refused.json()["message"],
        "The request doesn't satisfy the collection requirements to authenticate."
    );
    set("verified = false");
    assert_eq!(refresh(&token).status, 200);
    set("verified = true");
    assert_eq!(refresh(&token).status, 403, "the record no longer passes the rule");
}

/// A form body infers `12345678` to a number: credentials are read as text all the same.
#[test]
fn numeric_passwords_in_form_bodies_are_text() {
    let server = TestServer::start();
    let form = "application/x-www-form-urlencoded";
    let signup = server
        .post("/api/collections/users/records")
        .raw(form, "email=n%40example.com&password=12345678&passwordConfirm=12345678")
        .send();
    assert_eq!(signup.status, 200, "{}", signup.json());
    let login = server
        .post("/api/collections/users/auth-with-password")
        .raw(form, "identity=n%40example.com&password=12345678")
        .send();
    assert_eq!(login.status, 200, "{}", login.json());
    let token = login.json()["token"].as_str().unwrap().to_string();
    let id = login.json()["record"]["id"].as_str().unwrap().to_string();
    let change = server
        .patch(&format!("/api/collections/users/records/{id}"))
        .auth(Some(&token))
        .raw(form, "oldPassword=12345678&password=87654321&passwordConfirm=87654321")
        .send();
    assert_eq!(change.status, 200, "{}", change.json());
    let alias =
        server.post("/api/auth/login").raw(form, "email=n%40example.com&password=87654321").send();
    assert_eq!(alias.status, 200, "{}", alias.json());
}

#[test]
fn superuser_create_is_an_upsert_that_revokes_old_tokens() {
    let mut server = TestServer::start();
    let old_token = server.admin();
    server.stop().unwrap();
    let config = server.config.clone();
    let updated =
        nanodb_server::create_superuser(config.clone(), ADMIN_EMAIL, "new-password-1").unwrap();
    assert!(matches!(updated, nanodb_server::Upserted::Updated(_)));
    let second =
        nanodb_server::create_superuser(config.clone(), "second@example.com", "password-2")
            .unwrap();
    assert!(matches!(second, nanodb_server::Upserted::Created(_)));
    assert!(nanodb_server::create_superuser(config.clone(), "bad", "password-2").is_err());
    assert!(nanodb_server::create_superuser(config.clone(), "x@y.org", "short").is_err());
    let server = TestServer::spawn(config, None);
    assert_eq!(server.get("/api/collections").auth(Some(&old_token)).send().status, 401);
    assert_eq!(server.login("_superusers", ADMIN_EMAIL, ADMIN_PASSWORD).status, 400);
    assert_eq!(server.login("_superusers", ADMIN_EMAIL, "new-password-1").status, 200);
    assert_eq!(server.login("_superusers", "second@example.com", "password-2").status, 200);
}

#[test]
fn the_install_token_creates_the_first_superuser_once() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = test_config(temp.path());
    config.install_token = Some("install-token-for-tests".into());
    let server = TestServer::spawn(config, Some(temp));
    let install = |token: &str, email: &str| {
        server
            .post("/api/install")
            .json(&json!({"token": token, "email": email, "password": "password-1"}))
            .send()
    };
    assert_eq!(install("wrong", "root@example.com").status, 400);
    let bad_password = server
        .post("/api/install")
        .json(&json!({"token": "install-token-for-tests", "email": "root@example.com", "password": "x"}))
        .send();
    assert_eq!(bad_password.status, 400);
    let created = install("install-token-for-tests", "root@example.com");
    assert_eq!(created.status, 200, "{}", created.json());
    let token = created.json()["token"].as_str().unwrap().to_string();
    assert_eq!(server.get("/api/collections").auth(Some(&token)).send().status, 200);
    assert_eq!(install("install-token-for-tests", "other@example.com").status, 400, "used up");
    assert_eq!(server.login("_superusers", "other@example.com", "password-1").status, 400);
    let form = server
        .post("/api/install")
        .raw(
            "application/x-www-form-urlencoded",
            "token=install-token-for-tests&email=x%40y.org&password=password-1",
        )
        .send();
    assert_eq!(form.status, 400);
}

#[test]
fn install_is_refused_once_a_superuser_exists() {
    let server =
        TestServer::start_with(|config| config.install_token = Some("fixed-install-token".into()));
    let response = server
        .post("/api/install")
        .json(&json!({"token": "fixed-install-token", "email": "root@example.com", "password": "password-1"}))
        .send();
    assert_eq!(response.status, 400, "a superuser exists, so no token is held");
}

#[test]
fn password_hashing_over_its_waiting_cap_is_429() {
    let server = TestServer::start_with(|config| config.password_hash_waiters_max = 0);
    let response = server.login("_superusers", ADMIN_EMAIL, ADMIN_PASSWORD);
    assert_eq!(response.status, 429);
    assert_eq!(response.json()["status"], 429);
}

#[test]
fn managers_change_other_records_without_the_old_password() {
    let server = TestServer::start();
    let admin = server.admin();
    let rules = json!({"updateRule": "", "manageRule": "@request.auth.verified = true"});
    assert_eq!(
        server.patch("/api/collections/users").auth(Some(&admin)).json(&rules).send().status,
        200
    );
    let (_, boss_record) = server.user("users", "boss@example.com", "password-1");
    let boss_path =
        format!("/api/collections/users/records/{}", boss_record["id"].as_str().unwrap());
    let verify =
        server.patch(&boss_path).auth(Some(&admin)).json(&json!({"verified": true})).send();
    assert_eq!(verify.json()["verified"], true);
    let boss = server.login("users", "boss@example.com", "password-1").json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (worker, worker_record) = server.user("users", "worker@example.com", "password-1");
    let worker_path =
        format!("/api/collections/users/records/{}", worker_record["id"].as_str().unwrap());
    let reset = json!({"password": "password-2", "passwordConfirm": "password-2", "verified": true, "email": "w2@example.com"});
    let by_peer = server
        .patch(&boss_path)
        .auth(Some(&worker))
        .json(&json!({"password": "password-9", "passwordConfirm": "password-9"}))
        .send();
    assert_eq!(by_peer.status, 400, "not a manager: the old password is needed");
    let by_manager = server.patch(&worker_path).auth(Some(&boss)).json(&reset).send();
    assert_eq!(by_manager.status, 200, "{}", by_manager.json());
    assert_eq!(by_manager.json()["verified"], true);
    assert_eq!(server.login("users", "w2@example.com", "password-2").status, 200);
}
