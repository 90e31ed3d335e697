"""Vision primitives: MTCNN face detection and tracks, face crops, head-pose and expression
proxies from five landmarks, face geometry and thin-plate-spline warping."""
