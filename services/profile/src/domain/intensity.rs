//! Digital intensity index (docs/DOMAIN.md §4.5): how much digital shapes a customer's
//! behaviour, from the channel mix of the trailing 180 days.
//!
//! `DII = round(100 × (w₁·digital_share + w₂·digital_breadth + w₃·device_factor + w₄·self_service_share))`
//! with default weights 0.50, 0.20, 0.15, 0.15, and four categories cut at
//! 25, 50 and 75. Weights and cuts are configurable per tenant.

pub const WINDOW_DAYS: i64 = 180;
/// Number of digital channels (web, mobile_app, email, sms, chat, chatbot, social, kiosk).
pub const DIGITAL_CHANNELS: u32 = 8;
pub const MAX_DEVICES: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Physical and human channels first.
    Traditional,
    Hybrid,
    Connected,
    /// Digital first, self-service.
    DigitalNative,
}

impl Category {
    pub const ALL: [Self; 4] = [Self::Traditional, Self::Hybrid, Self::Connected, Self::DigitalNative];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Traditional => "traditional",
            Self::Hybrid => "hybrid",
            Self::Connected => "connected",
            Self::DigitalNative => "digital_native",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// What the index is computed from: counts over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelMix {
    pub touchpoints: u64,
    pub digital: u64,
    /// Digital touchpoints the customer initiated (pull).
    pub digital_pull: u64,
    pub distinct_digital_channels: u32,
    pub devices: u32,
}

/// A tenant's weights and category cuts.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntensityModel {
    pub digital_share: f64,
    pub digital_breadth: f64,
    pub device_factor: f64,
    pub self_service_share: f64,
    /// Lowest index of hybrid, connected and digital_native.
    pub cuts: [u8; 3],
}

impl Default for IntensityModel {
    fn default() -> Self {
        Self {
            digital_share: 0.50,
            digital_breadth: 0.20,
            device_factor: 0.15,
            self_service_share: 0.15,
            cuts: [25, 50, 75],
        }
    }
}

impl IntensityModel {
    /// The model with `weights` of digital share, digital breadth, device
    /// factor and self-service share, in that order.
    pub fn with_weights(self, [digital_share, digital_breadth, device_factor, self_service_share]: [f64; 4]) -> Self {
        Self { digital_share, digital_breadth, device_factor, self_service_share, ..self }
    }

    /// Weights are non-negative and sum to 1; cuts rise strictly within 1..=100.
    pub fn validate(&self) -> Result<(), String> {
        let weights = [self.digital_share, self.digital_breadth, self.device_factor, self.self_service_share];
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err("weights must be finite and not negative".into());
        }
        if (weights.iter().sum::<f64>() - 1.0).abs() > 1e-9 {
            return Err("weights must add up to 1".into());
        }
        let [a, b, c] = self.cuts;
        if !(0 < a && a < b && b < c && c <= 100) {
            return Err("category cuts must rise strictly within 1..=100".into());
        }
        Ok(())
    }

    pub fn category(&self, index: u8) -> Category {
        let [hybrid, connected, native] = self.cuts;
        match index {
            i if i >= native => Category::DigitalNative,
            i if i >= connected => Category::Connected,
            i if i >= hybrid => Category::Hybrid,
            _ => Category::Traditional,
        }
    }
}

/// The four components of the index (each 0–1). They depend on the
/// customer's activity alone; the index and category also depend on the
/// tenant's model, so they are derived when read (a model change rewrites
/// nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Components {
    pub digital_share: f64,
    pub digital_breadth: f64,
    pub device_factor: f64,
    pub self_service_share: f64,
}

impl Components {
    /// `None` when the customer has no touchpoint in the window.
    pub fn of(mix: &ChannelMix) -> Option<Self> {
        if mix.touchpoints == 0 {
            return None;
        }
        Some(Self {
            digital_share: mix.digital as f64 / mix.touchpoints as f64,
            digital_breadth: f64::from(mix.distinct_digital_channels.min(DIGITAL_CHANNELS))
                / f64::from(DIGITAL_CHANNELS),
            device_factor: f64::from(mix.devices.min(MAX_DEVICES)) / f64::from(MAX_DEVICES),
            self_service_share: if mix.digital == 0 { 0.0 } else { mix.digital_pull as f64 / mix.digital as f64 },
        })
    }
}

/// Added before rounding, so exact halves (62.5 computed as 62.4999…) round up.
pub const ROUNDING_NUDGE: f64 = 1e-9;

/// The index with its four components, so a user sees why.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intensity {
    pub index: u8,
    pub category: Category,
    pub digital_share: f64,
    pub digital_breadth: f64,
    pub device_factor: f64,
    pub self_service_share: f64,
}

impl IntensityModel {
    /// `100 × Σ weight·component + nudge`, unrounded. The store's SQL computes
    /// the same IEEE operations in the same order (`store::intensity`), so a
    /// filter or a distribution in the database agrees with this to the bit.
    pub fn score(&self, c: &Components) -> f64 {
        let weighted = self.digital_share * c.digital_share
            + self.digital_breadth * c.digital_breadth
            + self.device_factor * c.device_factor
            + self.self_service_share * c.self_service_share;
        100.0 * weighted + ROUNDING_NUDGE
    }

    /// The index of `c` (0–100): the score rounded half up.
    pub fn index(&self, c: &Components) -> u8 {
        self.score(c).round().clamp(0.0, 100.0) as u8
    }

    pub fn intensity(&self, c: &Components) -> Intensity {
        let index = self.index(c);
        Intensity {
            index,
            category: self.category(index),
            digital_share: c.digital_share,
            digital_breadth: c.digital_breadth,
            device_factor: c.device_factor,
            self_service_share: c.self_service_share,
        }
    }

    /// The lowest index of `category` and the lowest of the next one up
    /// (`None` for digital_native).
    pub fn bounds(&self, category: Category) -> (u8, Option<u8>) {
        let [hybrid, connected, native] = self.cuts;
        match category {
            Category::Traditional => (0, Some(hybrid)),
            Category::Hybrid => (hybrid, Some(connected)),
            Category::Connected => (connected, Some(native)),
            Category::DigitalNative => (native, None),
        }
    }
}

/// `None` when the customer has no touchpoint in the window.
pub fn intensity(mix: &ChannelMix, model: &IntensityModel) -> Option<Intensity> {
    Components::of(mix).map(|c| model.intensity(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(mix: ChannelMix) -> (u8, Category) {
        let i = intensity(&mix, &IntensityModel::default()).unwrap();
        (i.index, i.category)
    }

    #[test]
    fn no_touchpoint_has_no_index() {
        assert_eq!(intensity(&ChannelMix::default(), &IntensityModel::default()), None);
    }

    #[test]
    fn a_store_and_phone_customer_is_traditional() {
        // 20 touchpoints, 2 digital (emails the company sent: push), 1 channel, 0 devices:
        // 0.50·0.1 + 0.20·(1/8) + 0.15·0 + 0.15·0 = 0.05 + 0.025 = 0.075 → 7.5 → 8.
        let mix = ChannelMix { touchpoints: 20, digital: 2, digital_pull: 0, distinct_digital_channels: 1, devices: 0 };
        assert_eq!(index(mix), (8, Category::Traditional));
    }

    #[test]
    fn a_mixed_customer_is_hybrid() {
        // 10 touchpoints, 4 digital of which 2 pull, 2 channels, 1 device:
        // 0.50·0.4 + 0.20·0.25 + 0.15·0.25 + 0.15·0.5 = 0.2 + 0.05 + 0.0375 + 0.075 = 0.3625 → 36.
        let mix = ChannelMix { touchpoints: 10, digital: 4, digital_pull: 2, distinct_digital_channels: 2, devices: 1 };
        assert_eq!(index(mix), (36, Category::Hybrid));
    }

    #[test]
    fn a_mostly_digital_customer_is_connected() {
        // 10 touchpoints, 7 digital of which 4 pull, 3 channels, 2 devices:
        // 0.50·0.7 + 0.20·0.375 + 0.15·0.5 + 0.15·(4/7)
        // = 0.35 + 0.075 + 0.075 + 0.0857142… = 0.5857142… → 58.57 → 59.
        let mix = ChannelMix { touchpoints: 10, digital: 7, digital_pull: 4, distinct_digital_channels: 3, devices: 2 };
        assert_eq!(index(mix), (59, Category::Connected));
    }

    #[test]
    fn a_self_serving_app_and_web_customer_is_digital_native() {
        // 40 touchpoints, 38 digital of which 36 pull, 5 channels, 3 devices:
        // 0.50·0.95 + 0.20·0.625 + 0.15·0.75 + 0.15·(36/38)
        // = 0.475 + 0.125 + 0.1125 + 0.1421052… = 0.8546052… → 85.46 → 85.
        let mix =
            ChannelMix { touchpoints: 40, digital: 38, digital_pull: 36, distinct_digital_channels: 5, devices: 3 };
        let i = intensity(&mix, &IntensityModel::default()).unwrap();
        assert_eq!((i.index, i.category), (85, Category::DigitalNative));
        assert_eq!((i.digital_share, i.digital_breadth, i.device_factor), (0.95, 0.625, 0.75));
    }

    #[test]
    fn exact_halves_round_up_and_devices_cap_at_four() {
        // 8 touchpoints all digital and pull, 8 channels, 6 devices (counted as 4): 1.0 → 100.
        let full = ChannelMix { touchpoints: 8, digital: 8, digital_pull: 8, distinct_digital_channels: 8, devices: 6 };
        assert_eq!(index(full), (100, Category::DigitalNative));
        // 4 touchpoints, 1 digital push, 1 channel, 2 devices:
        // 0.50·0.25 + 0.20·0.125 + 0.15·0.5 + 0 = 0.125 + 0.025 + 0.075 = 0.225 → 22.5 → 23.
        let half = ChannelMix { touchpoints: 4, digital: 1, digital_pull: 0, distinct_digital_channels: 1, devices: 2 };
        assert_eq!(index(half), (23, Category::Traditional));
    }

    #[test]
    fn bounds_are_the_index_ranges_of_the_categories() {
        // The store filters a category as "index ≥ low and not ≥ next"; every
        // index lands in exactly the category whose bounds hold it.
        for model in [IntensityModel::default(), IntensityModel { cuts: [1, 2, 100], ..Default::default() }] {
            for index in 0..=100u8 {
                let holding: Vec<_> = Category::ALL
                    .into_iter()
                    .filter(|c| {
                        let (low, next) = model.bounds(*c);
                        index >= low && next.is_none_or(|n| index < n)
                    })
                    .collect();
                assert_eq!(holding, [model.category(index)], "index {index} under {:?}", model.cuts);
            }
        }
    }

    #[test]
    fn a_model_change_rescores_the_same_components() {
        // 4 touchpoints, 1 digital and pull, 2 channels, no device: components ¼, ²⁄₈, 0, 1.
        // Default: 0.5·0.25 + 0.2·0.25 + 0 + 0.15·1 = 0.325 → 32.5 → 33 (the
        // doubles give 32.49999999999999; the nudge rounds it up). Share only: 25.
        let c = Components::of(&ChannelMix {
            touchpoints: 4,
            digital: 1,
            digital_pull: 1,
            distinct_digital_channels: 2,
            devices: 0,
        })
        .unwrap();
        assert_eq!(IntensityModel::default().index(&c), 33);
        let share_only = IntensityModel::default().with_weights([1.0, 0.0, 0.0, 0.0]);
        assert_eq!((share_only.index(&c), share_only.intensity(&c).category), (25, Category::Hybrid));
    }

    #[test]
    fn categories_follow_the_cuts_including_a_tenants_own() {
        let model = IntensityModel::default();
        let cats: Vec<_> = [0, 24, 25, 49, 50, 74, 75, 100].iter().map(|i| model.category(*i)).collect();
        use Category::*;
        assert_eq!(
            cats,
            [Traditional, Traditional, Hybrid, Hybrid, Connected, Connected, DigitalNative, DigitalNative]
        );
        let strict = IntensityModel { cuts: [40, 60, 90], ..model };
        assert_eq!(strict.category(59), Hybrid);
        assert!(strict.validate().is_ok());
        assert!(IntensityModel { cuts: [50, 40, 90], ..model }.validate().is_err());
        assert!(IntensityModel { digital_share: 0.6, ..model }.validate().is_err());
    }
}
