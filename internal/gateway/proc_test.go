package gateway_test

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// Gateway processes for the tests that need real ones (the cluster test):
// built once, started with a config file, killed by PID.

// gatewayProc is one gateway process.
type gatewayProc struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

// startGateway runs the binary and waits until it serves; cleanup stops
// it (SIGTERM, then SIGKILL), by its PID only.
func startGateway(t *testing.T, bin, cfgPath, logPath string) *gatewayProc {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgPath)
	cmd.Dir = t.TempDir() // data_dir ("data") is per node: the webhooks outbox is a file of its node
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{cmd: cmd, exited: make(chan struct{})}
	base := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`(http://127\.0\.0\.1:\d+)/v1`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case base <- m[1]:
				default:
				}
			}
		}
		_ = cmd.Wait()
		logf.Close()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-g.exited
		}
	})
	select {
	case g.url = <-base:
	case <-g.exited:
		log, _ := os.ReadFile(logPath)
		t.Fatalf("gateway exited at start:\n%s", log)
	case <-time.After(30 * time.Second):
		t.Fatal("gateway printed no URL within 30s")
	}
	waitFor(t, "the gateway to be ready", func() bool {
		resp, err := http.Get(g.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return g
}

// kill ends the process at once, as a crash would.
func (g *gatewayProc) kill(t *testing.T) {
	t.Helper()
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-g.exited
}

// buildGateway builds cmd/gateway (without -race: the gateways are the
// system under test, not the test) into a temporary directory.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/gateway").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
