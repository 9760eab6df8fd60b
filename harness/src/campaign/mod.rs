//! Campaign pieces: the plan, the seeded workload generator, the recorder, the workers,
//! the nemesis driver, the checks, the run folder and the runner that wires them.

pub mod checking;
pub mod driver;
pub mod generator;
pub mod live;
pub mod plan;
pub mod progress;
pub mod recorder;
pub mod runner;
pub mod worker;

pub use generator::{Generator, GeneratorSpec, OpRequest, Workload};
pub use recorder::{Entry, Recorder};
