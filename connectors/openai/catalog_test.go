package openai_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ogma-dev/ogma/connectors/openai"
	"github.com/ogma-dev/ogma/pipeline/stream"
)

// The connector polls exactly the catalogue's OpenAI streams, in its order.
func TestStreamsFollowTheCatalogue(t *testing.T) {
	c, err := openai.NewClient(openai.ClientConfig{BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, s := range openai.Streams(c, time.Minute, time.Hour) {
		got = append(got, s.Stream.Name())
	}
	for _, s := range stream.Of(stream.OpenAI) {
		want = append(want, s.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("polled streams = %v\nthe catalogue's    %v", got, want)
	}
}
