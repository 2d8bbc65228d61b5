//! Page tokens and the decision "is there a next page".
//!
//! The token is opaque to callers and carried in `SyncJob::page_token`: the body's cursor
//! (`cursor`), the next URL (`nextUrl`, `linkHeader`; with any api-key query parameter
//! removed, so a secret never lands in a queue message), or the next offset / page number in
//! decimal.

use reqwest::Url;
use serde_json::Value;

use crate::definition::{Pagination, PaginationStyle, StopCondition};

/// Where the page to fetch starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    First,
    Cursor(String),
    Url(Url),
    Offset(u64),
    Page(u64),
}

impl Position {
    pub fn from_token(pagination: &Pagination, token: Option<&str>) -> Result<Self, String> {
        let Some(token) = token else {
            return Ok(match pagination.style {
                PaginationStyle::Offset => Self::Offset(pagination.start_offset()),
                PaginationStyle::PageNumber => Self::Page(pagination.start_page()),
                _ => Self::First,
            });
        };
        match pagination.style {
            PaginationStyle::None => Err("this stream has a single page".into()),
            PaginationStyle::Cursor if token.is_empty() => Err("empty cursor".into()),
            PaginationStyle::Cursor => Ok(Self::Cursor(token.to_owned())),
            PaginationStyle::NextUrl | PaginationStyle::LinkHeader => {
                let url = Url::parse(token).map_err(|e| format!("not a URL: {e}"))?;
                if matches!(url.scheme(), "http" | "https") {
                    Ok(Self::Url(url))
                } else {
                    Err(format!("unsupported scheme `{}`", url.scheme()))
                }
            }
            PaginationStyle::Offset => token
                .parse()
                .map(Self::Offset)
                .map_err(|_| "not an offset".into()),
            PaginationStyle::PageNumber => token
                .parse()
                .map(Self::Page)
                .map_err(|_| "not a page number".into()),
        }
    }
}

/// What the response says about what comes next.
pub(crate) struct PageFacts<'a> {
    pub body: &'a Value,
    pub link_headers: Vec<&'a str>,
    /// The URL that answered (after redirects): relative next URLs resolve against it.
    pub response_url: &'a Url,
    pub record_count: usize,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NextPage {
    Done,
    Token(String),
    /// The API named the page just fetched as the next one: following it would never end.
    Stuck,
}

pub(crate) fn next_page(
    pagination: &Pagination,
    position: &Position,
    facts: &PageFacts<'_>,
    strip_query_param: Option<&str>,
) -> NextPage {
    let stops = pagination.stop_conditions();
    let count = facts.record_count as u64;
    let stop = |condition| stops.contains(&condition);
    let fewer_than_limit = pagination
        .page_size
        .is_some_and(|size| count < u64::from(size));
    if (stop(StopCondition::EmptyPage) && count == 0)
        || (stop(StopCondition::FewerThanLimit) && fewer_than_limit)
    {
        return NextPage::Done;
    }
    if stop(StopCondition::NoMore)
        && pagination
            .has_more_pointer
            .as_ref()
            .and_then(|p| p.get(facts.body))
            .and_then(Value::as_bool)
            != Some(true)
    {
        return NextPage::Done;
    }
    match (pagination.style, position) {
        (PaginationStyle::None, _) => NextPage::Done,
        (PaginationStyle::Cursor, _) => {
            let next = pagination
                .cursor_pointer
                .as_ref()
                .and_then(|p| p.get(facts.body))
                .and_then(token_text);
            match next {
                None => NextPage::Done,
                Some(next) if matches!(position, Position::Cursor(c) if *c == next) => {
                    NextPage::Stuck
                }
                Some(next) => NextPage::Token(next),
            }
        }
        (PaginationStyle::NextUrl | PaginationStyle::LinkHeader, _) => {
            let target = if pagination.style == PaginationStyle::NextUrl {
                pagination
                    .next_url_pointer
                    .as_ref()
                    .and_then(|p| p.get(facts.body))
                    .and_then(token_text)
            } else {
                link_target(facts.link_headers.iter().copied(), pagination.rel())
            };
            let Some(next) = target.and_then(|t| facts.response_url.join(&t).ok()) else {
                return NextPage::Done;
            };
            let next = without_param(next, strip_query_param);
            let current = match position {
                Position::Url(url) => Some(without_param(url.clone(), strip_query_param)),
                _ => None,
            };
            if current.as_ref() == Some(&next) {
                NextPage::Stuck
            } else {
                NextPage::Token(next.into())
            }
        }
        (PaginationStyle::Offset, Position::Offset(offset)) => {
            // Advance by what came back, not by what was asked: an API that caps the page size
            // lower would otherwise make us skip records.
            let seen = offset.saturating_sub(pagination.start_offset()) + count;
            if count == 0
                || (stop(StopCondition::TotalReached) && facts.total.is_some_and(|t| seen >= t))
            {
                NextPage::Done
            } else {
                NextPage::Token((offset + count).to_string())
            }
        }
        (PaginationStyle::PageNumber, Position::Page(page)) => {
            let size = u64::from(pagination.page_size.unwrap_or(1));
            let seen = page.saturating_sub(pagination.start_page()) * size + count;
            if count == 0
                || (stop(StopCondition::TotalReached) && facts.total.is_some_and(|t| seen >= t))
            {
                NextPage::Done
            } else {
                NextPage::Token((page + 1).to_string())
            }
        }
        (PaginationStyle::Offset | PaginationStyle::PageNumber, _) => NextPage::Done,
    }
}

/// A cursor or URL from the body: non-empty text, or a number.
fn token_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn without_param(mut url: Url, name: Option<&str>) -> Url {
    let Some(name) = name else {
        return url;
    };
    if !url.query_pairs().any(|(k, _)| k == name) {
        return url;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url
}

/// The target of the first link whose `rel` includes `rel` (case-insensitive), across all
/// `Link` header values (RFC 8288: `<url>; rel="next", <url>; rel="last"`).
pub fn link_target<'a>(values: impl IntoIterator<Item = &'a str>, rel: &str) -> Option<String> {
    values
        .into_iter()
        .flat_map(parse_link_header)
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case(rel)))
        .map(|(target, _)| target)
}

/// (target, relation types) of each link-value.
fn parse_link_header(value: &str) -> Vec<(String, Vec<String>)> {
    let mut links = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(after_open) = rest.strip_prefix('<') else {
            break;
        };
        let Some(close) = after_open.find('>') else {
            break;
        };
        let target = after_open[..close].trim().to_owned();
        rest = &after_open[close + 1..];
        let mut rels = Vec::new();
        // Parameters up to the next comma outside a quoted string.
        loop {
            rest = rest.trim_start();
            let Some(after_semicolon) = rest.strip_prefix(';') else {
                break;
            };
            rest = after_semicolon.trim_start();
            let name_end = rest.find(['=', ';', ',']).unwrap_or(rest.len());
            let name = rest[..name_end].trim().to_ascii_lowercase();
            rest = &rest[name_end..];
            let mut param_value = String::new();
            if let Some(after_eq) = rest.strip_prefix('=') {
                rest = after_eq.trim_start();
                if let Some(quoted) = rest.strip_prefix('"') {
                    let mut chars = quoted.char_indices();
                    let mut end = quoted.len();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    param_value.push(escaped);
                                }
                            }
                            '"' => {
                                end = i + 1;
                                break;
                            }
                            c => param_value.push(c),
                        }
                    }
                    rest = &quoted[end.min(quoted.len())..];
                } else {
                    let end = rest.find([';', ',']).unwrap_or(rest.len());
                    param_value = rest[..end].trim().to_owned();
                    rest = &rest[end..];
                }
            }
            if name == "rel" {
                rels.extend(param_value.split_whitespace().map(str::to_owned));
            }
        }
        links.push((target, rels));
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_forms() {
        let github = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            link_target([github], "next").as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        assert_eq!(
            link_target([github], "LAST").as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=5")
        );
        assert_eq!(link_target([github], "prev"), None);
        let tricky = r#"</a?x=1,2>; title="a, b; c"; rel="prev next", </b>; rel=last"#;
        assert_eq!(link_target([tricky], "next").as_deref(), Some("/a?x=1,2"));
        assert_eq!(link_target([tricky], "last").as_deref(), Some("/b"));
        assert_eq!(
            link_target(["</one>; rel=first", "</two>; rel=next"], "next").as_deref(),
            Some("/two")
        );
        assert_eq!(link_target(["garbage", ""], "next"), None);
    }

    #[test]
    fn api_key_parameter_is_removed_from_url_tokens() {
        let url = Url::parse("https://x.test/a?page=2&api_key=s3cret&b=1").unwrap();
        assert_eq!(
            without_param(url, Some("api_key")).as_str(),
            "https://x.test/a?page=2&b=1"
        );
        let url = Url::parse("https://x.test/a?api_key=s3cret").unwrap();
        assert_eq!(
            without_param(url, Some("api_key")).as_str(),
            "https://x.test/a"
        );
    }
}
