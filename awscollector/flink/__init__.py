"""Running the collector on Apache Flink through Beam's Flink runner."""
