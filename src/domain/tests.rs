use super::*;

#[test]
fn issuer_names_are_restricted() {
    assert!(IssuerName::parse("dex").is_ok());
    assert!(IssuerName::parse("github-actions.v2").is_ok());
    for bad in ["", "Dex", "-dex", "a b", "dex/1", "é"] {
        assert!(IssuerName::parse(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn header_unsafe_values_are_refused() {
    assert!(Login::parse("octocat").is_ok());
    let err = Login::parse("mallory\r\nx-dispatch-user: root").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid login: contains a control character"
    );
    assert!(Login::parse(" octocat").is_err());
    assert!(Subject::parse(&"1".repeat(256)).is_err());
    assert!(Email::parse("not-an-email").is_err());
    assert!(Email::parse("a@b.example").is_ok());
}

#[test]
fn request_ids_from_clients_are_sanitised() {
    assert!(RequestId::parse("3f1c-aa").is_some());
    assert!(RequestId::parse("a b").is_none());
    assert!(RequestId::parse(&"a".repeat(129)).is_none());
    assert!(RequestId::parse("").is_none());
}

#[test]
fn user_ids_round_trip() {
    let id = UserId::new();
    assert_eq!(UserId::parse(&id.to_string()), Ok(id));
    assert!(UserId::parse("octocat").is_err());
}

#[test]
fn group_links_parse_and_print_the_same() {
    for text in [
        "github:team=acme/platform",
        "dex:groups=platform",
        "actions:job_workflow_ref=acme/deploy/.github/workflows/ship.yml@refs/heads/main",
        "dex:groups=a=b",
    ] {
        let link = GroupLink::parse(text).unwrap();
        assert_eq!(link.to_string(), text);
    }
    let link = GroupLink::parse("dex:groups=a=b").unwrap();
    assert_eq!(link.key.claim(), "groups");
    for bad in [
        "",
        "github",
        "github:team",
        "Dex:groups=x",
        "dex:=x",
        "dex:groups=",
        "dex:gr oups=x",
        "dex:groups=x\ny",
    ] {
        assert!(GroupLink::parse(bad).is_err(), "{bad:?} accepted");
    }
    let long = format!("dex:groups={}", "x".repeat(MAX_LINK_VALUE + 1));
    assert!(GroupLink::parse(&long).is_err());
}
