dockerTools.pullImage {
  imageName = "{{HOST}}/test/app";
  imageDigest = "sha256:ba785aa5cbe3b2fcf427e1cf55db9d06c804ca5ce766dccc3003aa8fb200e82d";
  hash = "sha256-HCeopI1sMHzg7PQgWKdLyASRDg+L1B8sFjDWQosC8+c=";
  finalImageName = "test/app";
  finalImageTag = "single";
  os = "linux";
  arch = "amd64";
}
