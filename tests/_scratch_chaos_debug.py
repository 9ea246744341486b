import time, uuid
from tests.test_chaos import Watch, Stream, frame_sender, wait_for, FRAMES, FPS, FAULT_AFTER, BURST
from steadyeye.v1.frames_pb2 import Frame, ReadyFrame

def test_timeline(stack, pipeline, frame_jpg):
    cam = f"dbg-{uuid.uuid4().hex[:6]}"
    watch = Watch(stack, cam)
    seen = []
    stream = Stream(frame_sender(pipeline, cam, frame_jpg), pipeline.producer.flush, FRAMES, FPS, burst_at=FAULT_AFTER, burst=BURST)
    t0 = time.time()
    stream.start()
    end = time.monotonic() + 8
    while time.monotonic() < end:
        seen.append((time.time() - t0, stream.burst_sent.is_set(), len(watch.records("frames")), len(watch.records("ready")), len(watch.records("detections")), len(watch.records("tracks"))))
        time.sleep(0.01)
    stream.finish()
    last = None
    for row in seen:
        if row[1:] != last:
            print("%.3f burst=%s frames=%d ready=%d det=%d trk=%d" % row)
            last = row[1:]
    fr = {Frame.FromString(r.value).ref.frame_id: r.timestamp for r in watch.records("frames")}
    rd = {ReadyFrame.FromString(r.value).ref.frame_id: r.timestamp for r in watch.records("ready")}
    print("frames ts (rel ms):", [fr[i] - int(t0*1000) for i in sorted(fr)])
    print("ready ts (rel ms):", [rd[i] - int(t0*1000) for i in sorted(rd)])
    watch.close()
