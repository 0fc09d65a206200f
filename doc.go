// Package ogma is the root of Ogma, a self-hostable auditor of AI-vendor
// usage. The code is organized by concern: cmd/ogma wires the roles;
// connectors/ reads the vendors; pipeline/ holds the topics, records and
// the chain; sinks/ writes ClickHouse and Rekor; api/ serves queries. See
// README.md.
package ogma
