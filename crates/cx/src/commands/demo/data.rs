//! The demo data set, generated from a seed: customers of the four digital
//! intensity categories, their journeys as touchpoints, and survey answers.
//! Pure and deterministic (no clock, no I/O): times are offsets before "now",
//! and each customer has a generator of its own, so customer `i` is the same
//! whatever the size asked.

use cx_proto::common::v1::{Channel, Initiator, InteractionKind};

const DAY: i64 = 86_400;

/// SplitMix64: tiny, fast and stable across releases (a crate's generator may
/// change its stream between versions, and the demo promises same seed, same data).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// A generator of its own for item `i` of a stream named by `salt`.
    pub fn derived(seed: u64, salt: u64, i: u64) -> Self {
        let mut mixer = Self(seed ^ salt.wrapping_mul(0xA24B_AED4_963E_E407) ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self::new(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// The digital intensity category a customer is generated to land in (DOMAIN §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Traditional,
    Hybrid,
    Connected,
    DigitalNative,
}

impl Segment {
    /// Share of episodes lived online, digital channels used, devices: chosen
    /// so the index (§4.5, default weights) lands mid-range, e.g. connected:
    /// 0.5·0.7 + 0.2·3/8 + 0.15·2/4 + 0.15·0.75 ≈ 0.61 → 61.
    fn profile(self) -> (f64, &'static [Channel], u64) {
        match self {
            Self::Traditional => (0.05, &[Channel::Web], 0),
            Self::Hybrid => (0.40, &[Channel::Web, Channel::Email], 1),
            Self::Connected => (0.70, &[Channel::Web, Channel::MobileApp, Channel::Email], 2),
            Self::DigitalNative => (0.95, &[Channel::Web, Channel::MobileApp, Channel::Email, Channel::Chat], 3),
        }
    }
}

/// How a customer's purchases run over the two years (DOMAIN §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Buys on and off throughout.
    Steady,
    /// Nothing in the last 400 days: lost.
    Lost,
    /// Lost, then a purchase in the last 60 days: reactivated.
    Reactivated,
}

/// The three journey maps of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapKind {
    Online,
    Store,
    Support,
}

pub const MAPS: [MapKind; 3] = [MapKind::Online, MapKind::Store, MapKind::Support];

/// One designed step: key, name, phase (1 before, 2 during, 3 after),
/// expected channels, importance, target, moment of truth, conversion, and
/// the mean experience score the demo gives it (the weak ones top the plan).
pub struct StepDef {
    pub key: &'static str,
    pub name: &'static str,
    pub phase: i32,
    pub channels: &'static [Channel],
    pub importance: i32,
    pub target: f64,
    pub moment_of_truth: bool,
    pub conversion: bool,
    pub mean_score: f64,
    pub pull: bool,
}

const fn step(key: &'static str, name: &'static str, phase: i32, channels: &'static [Channel]) -> StepDef {
    StepDef {
        key,
        name,
        phase,
        channels,
        importance: 3,
        target: 7.5,
        moment_of_truth: false,
        conversion: false,
        mean_score: 7.0,
        pull: true,
    }
}

const WEB_APP: &[Channel] = &[Channel::Web, Channel::MobileApp];

static ONLINE: [StepDef; 5] = [
    StepDef { importance: 2, mean_score: 7.6, ..step("browse", "Browse the catalogue", 1, WEB_APP) },
    StepDef { mean_score: 7.1, ..step("cart", "Fill the cart", 1, WEB_APP) },
    StepDef {
        importance: 5,
        target: 8.0,
        moment_of_truth: true,
        conversion: true,
        mean_score: 7.4,
        ..step("checkout", "Online purchase", 2, WEB_APP)
    },
    StepDef {
        importance: 2,
        mean_score: 8.0,
        pull: false,
        ..step("confirmation", "Order e-mail", 2, &[Channel::Email])
    },
    StepDef {
        importance: 4,
        target: 8.0,
        moment_of_truth: true,
        mean_score: 5.4,
        ..step("delivery", "Delivery tracking", 2, WEB_APP)
    },
];

static STORE: [StepDef; 3] = [
    StepDef { importance: 2, mean_score: 7.5, ..step("arrival", "Store visit", 1, &[Channel::Store]) },
    StepDef {
        importance: 4,
        target: 8.0,
        moment_of_truth: true,
        mean_score: 7.9,
        ..step("advice", "Advice from staff", 1, &[Channel::Store])
    },
    StepDef {
        importance: 4,
        target: 8.0,
        conversion: true,
        mean_score: 6.1,
        ..step("payment", "Pay at the till", 2, &[Channel::Store])
    },
];

static SUPPORT: [StepDef; 3] = [
    StepDef { mean_score: 4.9, ..step("call", "Support call", 3, &[Channel::Phone, Channel::Chat]) },
    StepDef { mean_score: 6.6, ..step("diagnosis", "Diagnosis", 3, &[Channel::Phone, Channel::Chat]) },
    StepDef {
        importance: 5,
        target: 8.0,
        moment_of_truth: true,
        conversion: true,
        mean_score: 7.0,
        ..step("resolution", "Problem solved", 3, &[Channel::Phone, Channel::Chat])
    },
];

impl MapKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Online => "Online purchase",
            Self::Store => "Store visit",
            Self::Support => "Support call",
        }
    }

    pub fn customer_type(self) -> &'static str {
        match self {
            Self::Online => "web and app shopper",
            Self::Store => "store shopper",
            Self::Support => "customer with a problem",
        }
    }

    pub fn steps(self) -> &'static [StepDef] {
        match self {
            Self::Online => &ONLINE,
            Self::Store => &STORE,
            Self::Support => &SUPPORT,
        }
    }

    /// Chance of going on to the next step (the funnel's drop-off).
    fn carry_on(self) -> f64 {
        match self {
            Self::Online => 0.78,
            Self::Store => 0.85,
            Self::Support => 0.82,
        }
    }
}

/// One generated touchpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Tp {
    pub id: String,
    pub seconds_ago: i64,
    pub channel: Channel,
    pub initiator: Initiator,
    pub kind: InteractionKind,
    pub map: MapKind,
    pub step: &'static str,
    pub instance: String,
    pub score: Option<i32>,
    /// In cents of EUR.
    pub purchase_cents: Option<i64>,
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub index: usize,
    pub email: String,
    pub segment: Segment,
    pub fate: Fate,
    /// Oldest first.
    pub touchpoints: Vec<Tp>,
}

impl Customer {
    /// Touchpoints in the last `days` days: what the survey triggers see.
    pub fn recent(&self, days: i64) -> bool {
        self.touchpoints.iter().any(|t| t.seconds_ago < days * DAY)
    }
}

/// Customer `index` of the data set of `seed`.
pub fn customer(seed: u64, index: usize) -> Customer {
    let mut rng = Rng::derived(seed, 1, index as u64);
    let segment = match rng.below(100) {
        0..30 => Segment::Traditional,
        30..55 => Segment::Hybrid,
        55..80 => Segment::Connected,
        _ => Segment::DigitalNative,
    };
    let fate = match rng.below(100) {
        0..12 => Fate::Lost,
        12..18 => Fate::Reactivated,
        _ => Fate::Steady,
    };
    let base = match segment {
        Segment::Traditional => 5,
        Segment::Hybrid => 6,
        Segment::Connected => 7,
        Segment::DigitalNative => 8,
    };
    let episodes = base + rng.below(4) as usize;
    let mut starts: Vec<i64> = (0..episodes)
        .map(|_| match fate {
            // Half in the intensity window (180 days), so the index is built on several.
            Fate::Steady if rng.chance(0.5) => days(&mut rng, 0, 180),
            Fate::Steady => days(&mut rng, 180, 728),
            Fate::Lost => days(&mut rng, 400, 728),
            Fate::Reactivated => days(&mut rng, 420, 728),
        })
        .collect();
    if fate == Fate::Reactivated {
        starts[0] = days(&mut rng, 3, 60);
    }
    starts.sort_unstable_by(|a, b| b.cmp(a));
    let (digital_share, digital, devices) = segment.profile();
    // Digital episodes spread evenly in time (a Bresenham walk), so any
    // stretch of the history, the 180-day window included, has about the share.
    let phase = rng.unit();
    let mut touchpoints = Vec::new();
    for (e, start) in starts.iter().enumerate() {
        let online = ((e as f64 + 1.0) * digital_share + phase).floor() > (e as f64 * digital_share + phase).floor();
        let comeback = fate == Fate::Reactivated && e + 1 == starts.len();
        let map = match (online, segment) {
            (true, _) => MapKind::Online,
            (false, _) if rng.chance(0.3) && !comeback => MapKind::Support,
            (false, _) => MapKind::Store,
        };
        let instance = format!("c{index}-e{e}");
        let steps = map.steps();
        for (s, def) in steps.iter().enumerate() {
            // The comeback episode buys: it runs at least to the conversion step.
            let must_buy = comeback && !steps[..s].iter().any(|d| d.conversion);
            if s > 0 && !must_buy && !rng.chance(map.carry_on()) {
                break;
            }
            let channel = pick_channel(&mut rng, def.channels, digital, segment);
            let is_digital = channel != Channel::Store && channel != Channel::Phone;
            let purchase = def.conversion && map != MapKind::Support;
            let score = rng.chance(0.5).then(|| score_near(&mut rng, def.mean_score));
            touchpoints.push(Tp {
                id: format!("demo{seed}-c{index}-e{e}-{}", def.key),
                seconds_ago: (start - (s as i64) * 600).max(60),
                channel,
                initiator: if def.pull { Initiator::Pull } else { Initiator::Push },
                kind: if purchase { InteractionKind::Transactional } else { InteractionKind::Informative },
                map,
                step: def.key,
                instance: instance.clone(),
                score,
                purchase_cents: purchase.then(|| 1_000 + rng.below(19_000) as i64),
                device: (is_digital && devices > 0).then(|| format!("dev-{index}-{}", rng.below(devices))),
            });
        }
    }
    Customer { index, email: format!("customer{index}@demo.example.com"), segment, fate, touchpoints }
}

/// Seconds ago, uniform in whole days [from, to), at a random second of the day.
fn days(rng: &mut Rng, from: i64, to: i64) -> i64 {
    (from + rng.below((to - from) as u64) as i64) * DAY + rng.below(DAY as u64 - 3_600) as i64 + 3_600
}

/// The step's channel the customer uses: a digital one they have, else the
/// first physical one (a native calls support on chat, the others phone).
fn pick_channel(rng: &mut Rng, expected: &[Channel], digital: &[Channel], segment: Segment) -> Channel {
    let theirs: Vec<Channel> = expected.iter().copied().filter(|c| digital.contains(c)).collect();
    if segment == Segment::DigitalNative && !theirs.is_empty() {
        return theirs[rng.below(theirs.len() as u64) as usize];
    }
    if let Some(physical) = expected.iter().copied().find(|c| matches!(c, Channel::Store | Channel::Phone)) {
        return physical;
    }
    if theirs.is_empty() { expected[0] } else { theirs[rng.below(theirs.len() as u64) as usize] }
}

/// A 0–10 score around `mean`, spread ±3.
fn score_near(rng: &mut Rng, mean: f64) -> i32 {
    let noise = rng.unit() * 6.0 - 3.0;
    (mean + noise).round().clamp(0.0, 10.0) as i32
}

/// The three kinds of survey of the demo, in the order they are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurveyKind {
    Nps,
    Csat,
    Ces,
}

pub const SURVEYS: [SurveyKind; 3] = [SurveyKind::Nps, SurveyKind::Csat, SurveyKind::Ces];

impl SurveyKind {
    /// A score on the survey's scale; `mood` in [0, 1] shifts it up (later
    /// answers are happier: the NPS trend rises).
    pub fn score(self, rng: &mut Rng, mood: f64) -> i32 {
        let u = (rng.unit() * 0.8 + mood * 0.2).clamp(0.0, 0.999_999);
        match self {
            // Roughly 30 % detractors, 25 % passives, 45 % promoters at mood 0.5.
            Self::Nps => match u {
                u if u < 0.30 => (u / 0.30 * 7.0) as i32,
                u if u < 0.55 => 7 + i32::from(u >= 0.43),
                u => 9 + i32::from(u >= 0.80),
            },
            Self::Csat => 1 + (u.powf(0.6) * 5.0) as i32,
            Self::Ces => 1 + (u.powf(0.7) * 7.0) as i32,
        }
    }
}

/// An anonymous web answer of the history (surveys answered on the site).
#[derive(Debug, Clone, PartialEq)]
pub struct Anonymous {
    pub id: String,
    pub survey: SurveyKind,
    pub seconds_ago: i64,
    pub score: i32,
}

/// `per_month` answers to each survey in each of the 24 months before today
/// (the months count back from yesterday, 30 days each).
pub fn history(seed: u64, per_month: usize) -> Vec<Anonymous> {
    let mut out = Vec::with_capacity(24 * 3 * per_month);
    for month in 0..24i64 {
        for survey in SURVEYS {
            for j in 0..per_month {
                let mut rng = Rng::derived(seed, 2, (month as u64) << 32 | (survey as u64) << 24 | j as u64);
                let mood = 1.0 - month as f64 / 24.0;
                out.push(Anonymous {
                    id: format!("demo{seed}-web-{survey:?}-m{month}-{j}").to_lowercase(),
                    survey,
                    seconds_ago: days(&mut rng, 1 + month * 30, 1 + (month + 1) * 30),
                    score: survey.score(&mut rng, mood),
                });
            }
        }
    }
    out
}

/// The answer to an invitation, decided by its id (a rerun answers the same).
pub fn answer(seed: u64, survey: SurveyKind, invitation_id: &str) -> i32 {
    let digest =
        invitation_id.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3));
    survey.score(&mut Rng::derived(seed, 3, digest), 0.5)
}

/// What is done with a follow-up case: 0 left alone, 1 assigned, 2 resolved.
pub fn case_fate(seed: u64, case_id: &str) -> u8 {
    let digest =
        case_id.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3));
    match Rng::derived(seed, 4, digest).below(10) {
        0..3 => 0,
        3..6 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_gives_the_reference_stream() {
        // SplitMix64 seeded 0: the published first outputs of the reference
        // implementation (Steele, Lea, Flood 2014; Vigna's splitmix64.c).
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn same_seed_same_customers_other_seed_other_customers() {
        assert_eq!(customer(17, 0), customer(17, 0));
        assert_eq!(customer(17, 41), customer(17, 41));
        assert_ne!(customer(17, 0).touchpoints, customer(18, 0).touchpoints);
        assert_eq!(history(17, 3), history(17, 3));
    }

    #[test]
    fn the_first_records_of_seed_17_are_fixed() {
        let c = customer(17, 0);
        assert_eq!((c.segment, c.fate, c.touchpoints.len()), (Segment::Hybrid, Fate::Steady, 18));
        // 60,686,070 s = 702 days and 33,270 s: a steady customer's older half
        // (days 180 to 727); the oldest episode is online (the hybrid's web),
        // its first step the pull "browse" on the customer's one device.
        let first = &c.touchpoints[0];
        assert_eq!(first.id, "demo17-c0-e0-browse");
        assert_eq!(first.seconds_ago, 60_686_070);
        assert_eq!(
            (first.channel, first.initiator, first.kind),
            (Channel::Web, Initiator::Pull, InteractionKind::Informative)
        );
        assert_eq!((first.map, first.step, first.instance.as_str()), (MapKind::Online, "browse", "c0-e0"));
        assert_eq!((first.score, first.purchase_cents, first.device.as_deref()), (None, None, Some("dev-0-0")));
        // 2,586,294 s = 29 days and 81,894 s: in month 0 (days 1 to 30 back).
        let web = &history(17, 1)[0];
        assert_eq!(
            (web.id.as_str(), web.survey, web.seconds_ago, web.score),
            ("demo17-web-nps-m0-0", SurveyKind::Nps, 2_586_294, 8)
        );
    }

    #[test]
    fn segments_land_in_their_intended_index_range() {
        // The index of §4.5 from each segment's plan, every episode in the
        // window: traditional 0.5·0.05 + 0.2·1/8 + 0 + 0.15·0.75 ≈ 0.16;
        // native 0.5·0.95 + 0.2·4/8 + 0.15·3/4 + 0.15·0.8 ≈ 0.81.
        let index = |share: f64, channels: f64, devices: f64, pull: f64| {
            0.5 * share + 0.2 * channels / 8.0 + 0.15 * devices / 4.0 + 0.15 * pull
        };
        for (segment, range, pull) in [
            (Segment::Traditional, 0.0..0.25, 0.75),
            (Segment::Hybrid, 0.25..0.50, 0.75),
            (Segment::Connected, 0.50..0.75, 0.75),
            (Segment::DigitalNative, 0.75..1.0, 0.8),
        ] {
            let (share, channels, devices) = segment.profile();
            let i = index(share, channels.len() as f64, devices as f64, pull);
            assert!(range.contains(&i), "{segment:?}: {i}");
        }
    }
}
