//! Digital intensity index (DESIGN §3): how much digital shapes a customer's
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

/// `None` when the customer has no touchpoint in the window.
pub fn intensity(mix: &ChannelMix, model: &IntensityModel) -> Option<Intensity> {
    if mix.touchpoints == 0 {
        return None;
    }
    let digital_share = mix.digital as f64 / mix.touchpoints as f64;
    let digital_breadth = f64::from(mix.distinct_digital_channels.min(DIGITAL_CHANNELS)) / f64::from(DIGITAL_CHANNELS);
    let device_factor = f64::from(mix.devices.min(MAX_DEVICES)) / f64::from(MAX_DEVICES);
    let self_service_share = if mix.digital == 0 { 0.0 } else { mix.digital_pull as f64 / mix.digital as f64 };
    let score = model.digital_share * digital_share
        + model.digital_breadth * digital_breadth
        + model.device_factor * device_factor
        + model.self_service_share * self_service_share;
    // The nudge keeps exact halves (62.5 computed as 62.4999…) rounding up.
    let index = (100.0 * score + 1e-9).round().clamp(0.0, 100.0) as u8;
    Some(Intensity {
        index,
        category: model.category(index),
        digital_share,
        digital_breadth,
        device_factor,
        self_service_share,
    })
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
