use reqwest::{StatusCode, header::HeaderMap};

use super::{
    api::{next_link, rate_limited},
    *,
};

#[test]
fn github_tokens_are_recognised() {
    for t in [
        "gho_abc",
        "ghu_x",
        "ghp_y",
        "github_pat_11AB",
        &"a1".repeat(20),
    ] {
        assert!(looks_like_github_token(t), "{t}");
    }
    for t in ["eyJ.eyJ.sig", "abc", &"g".repeat(40)] {
        assert!(!looks_like_github_token(t), "{t}");
    }
}

/// Regression (issue 9, item 10): shapes checked offline.
#[test]
fn only_tokens_of_a_github_shape_are_sent_to_github() {
    let ok = [
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
        "gho_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
        format!("github_pat_11ABCDEFG0{}", "x".repeat(72)),
        "a1".repeat(20),
    ];
    for t in &ok {
        assert!(well_formed(t), "{t}");
    }
    let bad = [
        "ghp_short".to_owned(),
        "ghp_16C7e42F292c6912E7710c838347Ae178B4-".to_owned(),
        format!("ghp_{}", "a".repeat(252)),
        "ghx_16C7e42F292c6912E7710c838347Ae178B4a".to_owned(),
        "g1".repeat(20),
    ];
    for t in &bad {
        assert!(!well_formed(t), "{t}");
    }
}

#[test]
fn the_next_page_is_found_in_the_link_header() {
    let mut headers = HeaderMap::new();
    headers.insert(
            "link",
            r#"<https://api.github.com/user/orgs?page=3>; rel="next", <https://api.github.com/user/orgs?page=9>; rel="last""#
                .parse()
                .unwrap(),
        );
    assert_eq!(
        next_link(&headers).as_deref(),
        Some("https://api.github.com/user/orgs?page=3")
    );
    assert_eq!(next_link(&HeaderMap::new()), None);
}

#[test]
fn rate_limits_are_told_from_refusals() {
    let mut headers = HeaderMap::new();
    assert!(rate_limited(StatusCode::FORBIDDEN, &headers).is_none());
    headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
    headers.insert("x-ratelimit-reset", "1795680000".parse().unwrap());
    assert!(
        rate_limited(StatusCode::FORBIDDEN, &headers)
            .unwrap()
            .contains("1795680000")
    );
    let mut retry = HeaderMap::new();
    retry.insert("retry-after", "60".parse().unwrap());
    assert!(rate_limited(StatusCode::TOO_MANY_REQUESTS, &retry).is_some());
    assert!(rate_limited(StatusCode::UNAUTHORIZED, &retry).is_none());
}
