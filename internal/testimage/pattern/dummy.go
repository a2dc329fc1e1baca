package pattern

// DummyFile is one file the emulated Kaapana dummy "upstream" step writes.
// Its content is the first Size bytes of the pattern.
type DummyFile struct {
	Channel string // output channel: "channel1" or "channel2"
	Path    string // slash-separated path relative to the channel
	Size    int64
}

// DummyUpstream lists, in the order written, every file that
// `python3 -u upstream.py` writes under /home/upstream/<Channel>. The
// ".log" file lets scale-rule tests see that a ".*\.txt" regex matters.
var DummyUpstream = []DummyFile{
	{Channel: "channel1", Path: "result-1.txt", Size: 1000},
	{Channel: "channel1", Path: "nested/result-2.txt", Size: 5000},
	{Channel: "channel1", Path: "notes.log", Size: 300},
	{Channel: "channel2", Path: "data.bin", Size: 4096},
}

// DummyChannels are the channel names the dummy templates use, in order.
var DummyChannels = []string{"channel1", "channel2"}
