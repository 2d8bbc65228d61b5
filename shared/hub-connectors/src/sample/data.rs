//! The sample CRM's records: a pure function of (seed, index) plus a small overlay of
//! modified records, so memory stays flat however many records the API serves.
//!
//! Order: by (`updatedAt`, id). Generated records have strictly increasing `updatedAt` in index
//! order (index `i` falls in its own time slot), and modified ones get a logical clock above
//! every generated time, so the sequence is "unmodified records by index, then modified ones
//! by their new time". Lists, cursors, offsets and totals are computed on that shape without
//! materialising it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

/// splitmix64: a tiny, well-mixed hash for deterministic pseudo-random values.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform sample in `[0, 1)` from a hash.
pub(crate) fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Contacts,
    Companies,
}

impl Entity {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "contacts" => Some(Self::Contacts),
            "companies" => Some(Self::Companies),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Companies => "companies",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Self::Contacts => "ct_",
            Self::Companies => "co_",
        }
    }

    fn salt(self) -> u64 {
        match self {
            Self::Contacts => 0xC0_47AC7,
            Self::Companies => 0xC0_3FA41,
        }
    }
}

/// Ids sort like indexes: a fixed width wide enough for 10^9 records.
pub(crate) fn record_id(entity: Entity, index: u64) -> String {
    format!("{}{index:09}", entity.id_prefix())
}

pub(crate) fn parse_id(entity: Entity, id: &str) -> Option<u64> {
    let digits = id.strip_prefix(entity.id_prefix())?;
    if digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// (updatedAt in epoch ms, index): the sort key of the sequence and the content of a cursor.
pub(crate) type SortKey = (i64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Modification {
    updated_ms: i64,
    revision: u32,
}

#[derive(Debug)]
pub(crate) struct Dataset {
    entity: Entity,
    seed: u64,
    pub count: u64,
    companies: u64,
    start_ms: i64,
    step_ms: i64,
    modified: BTreeMap<u64, Modification>,
    /// The modified records in sequence order.
    modified_order: BTreeSet<SortKey>,
    /// The logical clock of modifications: above every generated time.
    clock_ms: i64,
    modification_rounds: u64,
}

/// Where a list starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Beginning,
    After(SortKey),
    Offset(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListPage {
    pub records: Vec<Value>,
    pub last_key: Option<SortKey>,
    pub has_more: bool,
    /// Records matching the filter in the whole sequence.
    pub total: u64,
}

const NAMES_FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Radia",
    "Linus",
    "Frances",
    "John",
    "Katherine",
    "Dennis",
    "Hedy",
    "Tim",
    "Shafi",
    "Leslie",
    "Sophie",
    "Niklaus",
];
const NAMES_LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Torvalds",
    "Allen",
    "McCarthy",
    "Johnson",
    "Ritchie",
    "Lamarr",
    "Berners-Lee",
    "Goldwasser",
    "Lamport",
    "Wilson",
    "Wirth",
];
const TITLES: &[&str] = &[
    "Engineer",
    "Senior Engineer",
    "Engineering Manager",
    "Product Manager",
    "Designer",
    "Sales Lead",
    "Account Executive",
    "CTO",
    "CEO",
    "Support Specialist",
];
const STATUSES: &[&str] = &["lead", "prospect", "customer", "churned"];
const COMPANY_WORDS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Wonka",
    "Aperture",
    "Massive",
    "Oscorp",
    "Pied",
];
const COMPANY_SUFFIXES: &[&str] = &["Labs", "Systems", "Industries", "Group", "Works", "Piper"];
const INDUSTRIES: &[&str] = &[
    "software",
    "manufacturing",
    "retail",
    "finance",
    "healthcare",
    "logistics",
    "media",
];

fn pick<'a>(list: &[&'a str], hash: u64) -> &'a str {
    list[(hash % list.len() as u64) as usize]
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Dataset {
    /// `count` records whose `updatedAt` spread over `history_ms` up to `newest_ms`.
    pub fn new(
        entity: Entity,
        seed: u64,
        count: u64,
        companies: u64,
        newest_ms: i64,
        history_ms: i64,
    ) -> Self {
        let step_ms = (history_ms / i64::try_from(count.max(1)).unwrap_or(i64::MAX)).max(1);
        let span = step_ms.saturating_mul(i64::try_from(count).unwrap_or(i64::MAX));
        let start_ms = newest_ms.saturating_sub(span);
        Self {
            entity,
            seed,
            count,
            companies: companies.max(1),
            start_ms,
            step_ms,
            modified: BTreeMap::new(),
            modified_order: BTreeSet::new(),
            clock_ms: start_ms.saturating_add(span),
            modification_rounds: 0,
        }
    }

    fn hash(&self, index: u64, salt: u64) -> u64 {
        mix(self.seed ^ self.entity.salt() ^ mix(index ^ salt.rotate_left(32)))
    }

    /// Strictly increasing in `index`: each record sits in its own slot of `step_ms`.
    fn generated_ms(&self, index: u64) -> i64 {
        let slot = self
            .start_ms
            .saturating_add(self.step_ms.saturating_mul(index as i64));
        let offset = (self.hash(index, 1) % self.step_ms as u64) as i64;
        slot + offset
    }

    fn key_of(&self, index: u64) -> SortKey {
        match self.modified.get(&index) {
            Some(m) => (m.updated_ms, index),
            None => (self.generated_ms(index), index),
        }
    }

    /// The record at `index` as the API shows it.
    pub fn record(&self, index: u64) -> Option<Value> {
        if index >= self.count {
            return None;
        }
        let (updated_ms, revision) = match self.modified.get(&index) {
            Some(m) => (m.updated_ms, m.revision),
            None => (self.generated_ms(index), 0),
        };
        let created_ms =
            self.generated_ms(index) - (self.hash(index, 2) % (30 * 24 * 3600 * 1000)) as i64;
        let id = record_id(self.entity, index);
        Some(match self.entity {
            Entity::Contacts => {
                let first = pick(NAMES_FIRST, self.hash(index, 3));
                let last = pick(NAMES_LAST, self.hash(index, 4));
                let company = self.hash(index, 5) % self.companies;
                json!({
                    "id": id,
                    "firstName": first,
                    "lastName": last,
                    "email": format!(
                        "{}.{}.{index}@{}",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        company_domain(self.seed, company)
                    ),
                    "companyId": record_id(Entity::Companies, company),
                    "title": pick(TITLES, self.hash(index, 6).wrapping_add(u64::from(revision))),
                    "status": pick(STATUSES, self.hash(index, 7)),
                    "phone": format!("+1-555-{:04}", self.hash(index, 8) % 10_000),
                    "revision": revision,
                    "createdAt": rfc3339(created_ms),
                    "updatedAt": rfc3339(updated_ms),
                })
            }
            Entity::Companies => json!({
                "id": id,
                "name": company_name(self.seed, index),
                "domain": company_domain(self.seed, index),
                "industry": pick(INDUSTRIES, self.hash(index, 9).wrapping_add(u64::from(revision))),
                "employees": 5 + self.hash(index, 10) % 5000,
                "revision": revision,
                "createdAt": rfc3339(created_ms),
                "updatedAt": rfc3339(updated_ms),
            }),
        })
    }

    /// First index whose generated key is greater than `key` (binary search: generated keys
    /// increase with the index).
    fn first_generated_after(&self, key: SortKey) -> u64 {
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if (self.generated_ms(mid), mid) > key {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// First index whose generated time is at or after `since_ms`.
    fn first_generated_since(&self, since_ms: i64) -> u64 {
        self.first_generated_after((since_ms - 1, u64::MAX))
    }

    /// Unmodified indexes in `[from, count)`.
    fn unmodified_from(&self, from: u64) -> u64 {
        let modified = self.modified.range(from..).count() as u64;
        self.count.saturating_sub(from).saturating_sub(modified)
    }

    /// The index of the `skip`-th unmodified record at or after `from` (`count` if none).
    fn skip_unmodified(&self, from: u64, skip: u64) -> u64 {
        let mut position = from;
        let mut left = skip;
        for &modified in self.modified.range(from..).map(|(i, _)| i) {
            let gap = modified - position;
            if left < gap {
                return position + left;
            }
            left -= gap;
            position = modified + 1;
        }
        (position + left).min(self.count)
    }

    pub fn list(&self, since_ms: Option<i64>, start: Start, limit: usize) -> ListPage {
        let since = since_ms.unwrap_or(i64::MIN);
        let a_floor = match since_ms {
            Some(ms) => self.first_generated_since(ms),
            None => 0,
        };
        let a_total = self.unmodified_from(a_floor);
        let b_floor: SortKey = (since, 0);
        let b_total = self.modified_order.range(b_floor..).count() as u64;
        let total = a_total + b_total;

        // Where to begin in the generated part, and the lower bound in the modified part.
        let (a_start, b_after, b_skip) = match start {
            Start::Beginning => (a_floor, None, 0),
            Start::After(key) => (a_floor.max(self.first_generated_after(key)), Some(key), 0),
            Start::Offset(offset) if offset < a_total => {
                (self.skip_unmodified(a_floor, offset), None, 0)
            }
            Start::Offset(offset) => (self.count, None, offset - a_total),
        };
        let generated = (a_start..self.count).filter(|i| !self.modified.contains_key(i));
        let modified = self
            .modified_order
            .range(b_floor..)
            .filter(move |key| b_after.is_none_or(|after| **key > after))
            .skip(usize::try_from(b_skip).unwrap_or(usize::MAX))
            .map(|(_, index)| *index);
        let mut indexes: Vec<u64> = generated.chain(modified).take(limit + 1).collect();
        let has_more = indexes.len() > limit;
        indexes.truncate(limit);
        let last_key = indexes.last().map(|i| self.key_of(*i));
        ListPage {
            records: indexes.iter().filter_map(|i| self.record(*i)).collect(),
            last_key,
            has_more,
            total,
        }
    }

    /// Bumps `updatedAt` and changes a field of `count` distinct records, chosen
    /// deterministically from the seed and the round. Returns their ids in order.
    pub fn modify(&mut self, count: u64) -> (Vec<String>, i64) {
        let count = count.min(self.count);
        self.modification_rounds += 1;
        let round_hash = self.hash(self.modification_rounds, 11);
        let n = self.count.max(1);
        let start = round_hash % n;
        // A stride coprime with n visits n distinct indexes before repeating.
        let mut stride = 1 + mix(round_hash) % (n.max(2) - 1);
        while gcd(stride, n) != 1 {
            stride += 1;
        }
        let base_ms = self.clock_ms + 1000;
        let mut ids = Vec::with_capacity(count as usize);
        for k in 0..count {
            let index =
                ((u128::from(start) + u128::from(k) * u128::from(stride)) % u128::from(n)) as u64;
            let updated_ms = base_ms + k as i64;
            let revision = self.modified.get(&index).map_or(1, |m| m.revision + 1);
            if let Some(old) = self.modified.insert(
                index,
                Modification {
                    updated_ms,
                    revision,
                },
            ) {
                self.modified_order.remove(&(old.updated_ms, index));
            }
            self.modified_order.insert((updated_ms, index));
            ids.push(record_id(self.entity, index));
        }
        self.clock_ms = base_ms + count as i64;
        (ids, base_ms)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn company_name(seed: u64, index: u64) -> String {
    let h = mix(seed ^ Entity::Companies.salt() ^ mix(index ^ 77));
    format!(
        "{} {}",
        pick(COMPANY_WORDS, h),
        pick(COMPANY_SUFFIXES, h >> 17)
    )
}

fn company_domain(seed: u64, index: u64) -> String {
    let h = mix(seed ^ Entity::Companies.salt() ^ mix(index ^ 77));
    format!("{}{index}.example", pick(COMPANY_WORDS, h).to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(count: u64) -> Dataset {
        Dataset::new(
            Entity::Contacts,
            7,
            count,
            10,
            1_717_200_000_000,
            365 * 86_400_000,
        )
    }

    fn ids(page: &ListPage) -> Vec<String> {
        page.records
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn walk_cursor(data: &Dataset, since: Option<i64>, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut start = Start::Beginning;
        loop {
            let page = data.list(since, start, limit);
            out.extend(ids(&page));
            if !page.has_more {
                return out;
            }
            start = Start::After(page.last_key.unwrap());
        }
    }

    fn walk_offset(data: &Dataset, since: Option<i64>, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let page = data.list(since, Start::Offset(out.len() as u64), limit);
            out.extend(ids(&page));
            if !page.has_more {
                return out;
            }
        }
    }

    #[test]
    fn records_are_deterministic_and_ordered_by_update_time() {
        let a = dataset(1000);
        let b = dataset(1000);
        assert_eq!(a.record(17), b.record(17));
        let times: Vec<i64> = (0..1000).map(|i| a.generated_ms(i)).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert!(*times.last().unwrap() <= 1_717_200_000_000);
        assert_eq!(a.record(1000), None);
        let other_seed = Dataset::new(Entity::Contacts, 8, 1000, 10, 1_717_200_000_000, 1);
        assert_ne!(
            a.record(17).unwrap()["email"],
            other_seed.record(17).unwrap()["email"]
        );
    }

    #[test]
    fn cursor_and_offset_walks_see_every_record_once_even_after_modifications() {
        let mut data = dataset(503);
        let all: Vec<String> = (0..503).map(|i| record_id(Entity::Contacts, i)).collect();
        assert_eq!(walk_cursor(&data, None, 50), all);
        assert_eq!(walk_offset(&data, None, 50), all);
        let (changed, _) = data.modify(40);
        assert_eq!(changed.len(), 40);
        let distinct: BTreeSet<_> = changed.iter().collect();
        assert_eq!(distinct.len(), 40);
        let walked = walk_cursor(&data, None, 37);
        assert_eq!(walked.len(), 503);
        assert_eq!(walked[463..], changed[..], "modified records come last");
        assert_eq!(walk_offset(&data, None, 37), walked);
        assert_eq!(data.list(None, Start::Beginning, 1).total, 503);
    }

    #[test]
    fn updated_since_returns_exactly_the_newer_records() {
        let mut data = dataset(300);
        let cut = data.generated_ms(200);
        let newer = walk_cursor(&data, Some(cut), 25);
        assert_eq!(newer.len(), 100);
        assert_eq!(newer[0], record_id(Entity::Contacts, 200));
        let (changed, at) = data.modify(10);
        let after_change = walk_cursor(&data, Some(at), 3);
        assert_eq!(after_change, changed);
        assert_eq!(data.list(Some(at), Start::Beginning, 1).total, 10);
        assert_eq!(walk_offset(&data, Some(at), 4), changed);
    }

    #[test]
    fn modifying_twice_moves_a_record_once() {
        let mut data = dataset(5);
        data.modify(5);
        data.modify(5);
        let walked = walk_cursor(&data, None, 2);
        assert_eq!(walked.len(), 5);
        assert!(data.record(0).unwrap()["revision"].as_u64() == Some(2));
    }
}
