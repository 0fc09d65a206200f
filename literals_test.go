package ogma

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Streams are values (DESIGN.md, issue 12): no code outside the catalogue
// spells a stream name or prefix of its own — no "usage." prefix check, no
// "costs" — so that a vendor's streams are named in one table. Tests, test
// helpers and generated code are not held to it; struct tags and the
// capability flag of the same name are not stream names.
func TestNoStreamNamesOutsideTheCatalogue(t *testing.T) {
	allowed := map[string]bool{
		"pipeline/stream/catalog.go":        true, // the catalogue
		"pipeline/capability/capability.go": true, // the checklist's "costs" flag
	}
	literal := regexp.MustCompile(`"usage\.|"costs"`)
	tag := regexp.MustCompile("`[^`]*`")
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (path == "proto" || strings.HasPrefix(d.Name(), ".") && path != "." || strings.HasSuffix(d.Name(), "test")):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || allowed[path]:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(tag.ReplaceAllString(line, ""), "//")
			if literal.MatchString(code) {
				t.Errorf("%s:%d spells a stream name the catalogue holds: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
