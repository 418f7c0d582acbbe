//! Generated protobuf messages and gRPC stubs of CX Suite.
//!
//! One module per proto package (`cx.common.v1` → [`common::v1`]), and the
//! encoded descriptor set of every CX proto for server reflection.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod common {
    pub mod v1 {
        tonic::include_proto!("cx.common.v1");
    }
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod profile {
    pub mod v1 {
        tonic::include_proto!("cx.profile.v1");
    }
}

/// Encoded `FileDescriptorSet` of every CX proto (with their imports), for
/// `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cx_descriptor.bin"));

pub mod codec;
mod ext;
pub use ext::{from_timestamp, money, timestamp};

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod outbox {
    pub mod v1 {
        tonic::include_proto!("cx.outbox.v1");
    }
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod gdpr {
    pub mod v1 {
        tonic::include_proto!("cx.gdpr.v1");
    }
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod survey {
    pub mod v1 {
        tonic::include_proto!("cx.survey.v1");
    }
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod kpi {
    pub mod v1 {
        tonic::include_proto!("cx.kpi.v1");
    }
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod segmentation {
    pub mod v1 {
        tonic::include_proto!("cx.segmentation.v1");
    }
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod journey {
    pub mod v1 {
        tonic::include_proto!("cx.journey.v1");
    }
}
