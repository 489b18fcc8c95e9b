package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stormDriverEnv, set to 1, turns the test binary into a load driver of
// BenchmarkRefreshStorm. The benchmark runs two: one holds the 1,000
// clients and the provider they make Latchkey renew with, the other times
// the ordinary route. Each is a process of its own, as they are elsewhere
// in production; in the server's process they would queue in its
// scheduler with its goroutines, and the timer would queue behind the
// clients. They still share the machine's two cores.
const stormDriverEnv = "LATCHKEY_STORM_DRIVER"

// stormCommand is one line the benchmark sends a driver on its stdin; the
// driver answers each with one stormResult line on its stdout.
type stormCommand struct {
	// Op is one of:
	//   - "calls": GET URL (a fmt format, given i) for i < N, all at once;
	//   - "time": GET URL N times, one at a time, 5 ms apart;
	//   - "start": as "time", in the background until "stop", which
	//     answers the latencies.
	Op  string
	URL string
	Key string // the API key, if any
	N   int
}

type stormResult struct {
	Took    time.Duration
	Latency []time.Duration // of "time" and "stop", in order
	Failed  int64
	Error   string
}

// stormDelay is how long the driver's provider takes to answer a token
// request, and its waiter any request.
const stormDelay = 500 * time.Millisecond

// runStormDriver serves the benchmark's commands until stdin closes. It
// first writes its provider's and its waiter's URLs.
func runStormDriver() {
	serve := func(h http.HandlerFunc) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go http.Serve(l, h)
		return "http://" + l.Addr().String()
	}
	// Every token request gets a token for an hour and a rotated refresh
	// token.
	provider := serve(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(stormDelay)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"fresh","refresh_token":"rotated","token_type":"Bearer","expires_in":3600}`)
	})
	waiter := serve(func(http.ResponseWriter, *http.Request) { time.Sleep(stormDelay) })
	out := json.NewEncoder(os.Stdout)
	out.Encode(map[string]string{"provider": provider, "waiter": waiter})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2000}, Timeout: time.Minute}
	get := func(u, key string) error {
		req, _ := http.NewRequest("GET", u, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
		}
		return nil
	}
	timed := func(c stormCommand, stop <-chan struct{}) (lat []time.Duration, err error) {
		for range c.N {
			select {
			case <-stop:
				return lat, nil
			default:
			}
			start := time.Now()
			if err := get(c.URL, c.Key); err != nil {
				return lat, err
			}
			lat = append(lat, time.Since(start))
			time.Sleep(5 * time.Millisecond)
		}
		return lat, nil
	}
	var stop chan struct{}
	var background chan stormResult
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var c stormCommand
		var res stormResult
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			res.Error = err.Error()
			out.Encode(res)
			continue
		}
		var err error
		switch c.Op {
		case "calls":
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Int64
			var once sync.Once // the first error, of whatever type
			for i := range c.N {
				wg.Go(func() {
					if e := get(fmt.Sprintf(c.URL, i), c.Key); e != nil {
						failed.Add(1)
						once.Do(func() { err = e })
					}
				})
			}
			wg.Wait()
			res.Took, res.Failed = time.Since(start), failed.Load()
		case "time":
			res.Latency, err = timed(c, nil)
		case "start":
			stop, background = make(chan struct{}), make(chan stormResult, 1)
			go func() {
				var r stormResult
				lat, err := timed(stormCommand{URL: c.URL, Key: c.Key, N: 1 << 30}, stop)
				r.Latency = lat
				if err != nil {
					r.Error = err.Error()
				}
				background <- r
			}()
		case "stop":
			close(stop)
			res = <-background
		default:
			res.Error = "unknown op " + c.Op
		}
		if err != nil {
			res.Error = err.Error()
		}
		out.Encode(res)
	}
}

// stormDriver is the benchmark's end of a running driver.
type stormDriver struct {
	provider, waiter string
	in               *json.Encoder
	out              *json.Decoder
}

// startStormDriver runs this test binary again as a load driver, and
// stops it when the benchmark ends.
func startStormDriver(tb testing.TB) *stormDriver {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stormDriverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	d := &stormDriver{in: json.NewEncoder(stdin), out: json.NewDecoder(stdout)}
	var urls map[string]string
	if err := d.out.Decode(&urls); err != nil {
		tb.Fatalf("the storm driver did not start: %v", err)
	}
	d.provider, d.waiter = urls["provider"], urls["waiter"]
	return d
}

// do sends c and returns the driver's answer.
func (d *stormDriver) do(tb testing.TB, c stormCommand) stormResult {
	tb.Helper()
	if err := d.in.Encode(c); err != nil {
		tb.Fatal(err)
	}
	var res stormResult
	if err := d.out.Decode(&res); err != nil {
		tb.Fatal(err)
	}
	if res.Error != "" {
		tb.Errorf("storm driver, %s: %s", c.Op, res.Error)
	}
	return res
}
