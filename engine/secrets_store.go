package engine

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// SecretEnvPrefix starts the environment variables that give secrets: FLOWD_SECRET_NAME=value
// gives $secrets.NAME.
const SecretEnvPrefix = "FLOWD_SECRET_"

// maxSecretsFileBytes bounds a secrets file.
const maxSecretsFileBytes = 1 << 20

// SecretStore is a Secrets read once, at start-up, from the environment and a secrets file.
// It is immutable and safe for concurrent use. Reloading flows does not reload it: a changed
// secret takes a restart.
type SecretStore struct {
	values map[string]string
}

// NewSecretStore returns a store holding values (name → value). Names are checked as
// CheckSecretName says.
func NewSecretStore(values map[string]string) (*SecretStore, error) {
	s := &SecretStore{values: make(map[string]string, len(values))}
	var errs []error
	for name, v := range values {
		if err := CheckSecretName(name); err != nil {
			errs = append(errs, err)
			continue
		}
		s.values[name] = v
	}
	return s, errors.Join(errs...)
}

// LoadSecrets reads the secrets of environ (NAME=value entries, as os.Environ gives them)
// whose names start with SecretEnvPrefix, and, when path is not "", those of the secrets file
// at path (see ReadSecretsFile). A secret in both takes the environment's value. An empty
// environment variable counts as unset. Errors never quote a value.
func LoadSecrets(environ []string, path string) (*SecretStore, error) {
	values := map[string]string{}
	if path != "" {
		fromFile, err := ReadSecretsFile(path)
		if err != nil {
			return nil, err
		}
		values = fromFile
	}
	var errs []error
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, SecretEnvPrefix) || v == "" {
			continue
		}
		name := strings.TrimPrefix(k, SecretEnvPrefix)
		if err := CheckSecretName(name); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s: %w", k, err))
			continue
		}
		values[name] = v
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewSecretStore(values)
}

// ReadSecretsFile reads a secrets file: one NAME=value per line; blank lines and lines
// starting with # are skipped; the value is everything after the first "=", taken as it is
// except for one pair of matching quotes around it ("…" or '…'), which are dropped. The file
// must be a regular file that only its owner may read or write (mode 0600 or 0400): anything
// more open is refused, as the secrets would not be secret. Every bad line is reported, by
// line number, without its value.
func ReadSecretsFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secrets file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("secrets file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secrets file %s: mode %04o lets other users read or change it; it must be for its owner only (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretsFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", path, err)
	}
	if len(data) > maxSecretsFileBytes {
		return nil, fmt.Errorf("secrets file %s: larger than %d bytes", path, maxSecretsFileBytes)
	}
	values, errs := parseSecrets(data)
	for i, e := range errs {
		errs[i] = fmt.Errorf("secrets file %s:%w", path, e)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return values, nil
}

// parseSecrets parses the lines of a secrets file. Each error starts with "LINE: ".
func parseSecrets(data []byte) (map[string]string, []error) {
	values := map[string]string{}
	lineOf := map[string]int{}
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxSecretsFileBytes)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok {
			errs = append(errs, fmt.Errorf("%d: want NAME=value", n))
			continue
		}
		if err := CheckSecretName(name); err != nil {
			errs = append(errs, fmt.Errorf("%d: %w", n, err))
			continue
		}
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		if value == "" {
			errs = append(errs, fmt.Errorf("%d: secret %s has an empty value", n, name))
			continue
		}
		if first, dup := lineOf[name]; dup {
			errs = append(errs, fmt.Errorf("%d: secret %s is also set on line %d", n, name, first))
			continue
		}
		lineOf[name] = n
		values[name] = value
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%d: %w", n+1, err))
	}
	return values, errs
}

// CheckSecretName reports whether name can name a secret: letters, digits and underscores,
// not starting with a digit (so $secrets.NAME reads as a field).
func CheckSecretName(name string) error {
	if name == "" {
		return errors.New("secret name is empty")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return fmt.Errorf("secret name %q: want letters, digits and underscores, not starting with a digit", name)
		}
	}
	return nil
}

// Secret returns the value of the named secret, and false when there is none. A nil store
// has none.
func (s *SecretStore) Secret(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	v, ok := s.values[name]
	return v, ok
}

// Names returns the names of the secrets, sorted.
func (s *SecretStore) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.values))
	for name := range s.values {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Values returns a copy of every secret, name → value, for a redact.Redactor.
func (s *SecretStore) Values() map[string]string {
	out := map[string]string{}
	if s == nil {
		return out
	}
	for name, v := range s.values {
		out[name] = v
	}
	return out
}

// WithDefaults returns a store that also holds defaults for the names s does not have
// (flowd serve --demo gives the demo token endpoint's credentials this way).
func (s *SecretStore) WithDefaults(defaults map[string]string) (*SecretStore, error) {
	merged := s.Values()
	for name, v := range defaults {
		if _, ok := merged[name]; !ok {
			merged[name] = v
		}
	}
	return NewSecretStore(merged)
}
