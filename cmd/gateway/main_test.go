package main_test

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bin is the gateway binary, built once by TestMain for every test here.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "gateway-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "gateway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestBinaryStartsAndStopsOnSIGTERM builds the real binary, runs it on a
// free port with a temporary data directory, waits for /readyz, sends
// SIGTERM and expects exit status 0 within a few seconds.
func TestBinaryStartsAndStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s
shutdown_timeout: 3s
log: {format: json, level: info}
auth:
  admin_keys: [{name: test, key_env: TEST_OMNIGATE_ADMIN_KEY}]
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Env = append(os.Environ(), "TEST_OMNIGATE_ADMIN_KEY=binary-test-admin-key-0123")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	t.Cleanup(func() {
		// Only this test's own process, by PID, if it is still running.
		select {
		case <-exited:
		default:
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-exited
		}
	})

	// The banner names the real port; read it before waiting on the process.
	base := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/v1`)
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !found {
				base <- m[1]
				found = true
			}
		}
		if !found {
			close(base)
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()

	var url string
	select {
	case u, ok := <-base:
		if !ok {
			t.Fatalf("gateway printed no /v1 URL; stderr:\n%s", stderr.String())
		}
		url = u
	case <-time.After(30 * time.Second):
		t.Fatalf("no banner after 30s; stderr:\n%s", stderr.String())
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 10s (last error %v); stderr:\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", url+"/v1/conversations", nil)
	req.Header.Set("Authorization", "Bearer binary-test-admin-key-0123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /v1/conversations with the env admin key = %d", resp.StatusCode)
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5s after SIGTERM; stderr:\n%s", stderr.String())
	}
	for _, want := range []string{`"msg":"gateway shutting down"`, `"msg":"gateway stopped"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}
}

// TestBadConfigExits2 checks a broken config stops the binary before it
// serves anything, naming the problem.
func TestBadConfigExits2(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(cfgPath, []byte("listen: 127.0.0.1:0\nlisten_adress: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-config", cfgPath).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "listen_adress") {
		t.Fatalf("exit = %v, output:\n%s", err, out)
	}
}
