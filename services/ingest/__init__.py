"""ingest: read cameras (video files, image folders, RTSP/HTTP streams) and publish frames."""
