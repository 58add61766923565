{
  imageName = "{{HOST}}/test/app";
  imageDigest = "sha256:ba785aa5cbe3b2fcf427e1cf55db9d06c804ca5ce766dccc3003aa8fb200e82d";
  hash = "sha256-pRzMYK+4lyNDxmGnuENxYiaaDbo0RvJE6aduz52zIRA=";
  finalImageName = "test/app";
  finalImageTag = "multi";
}
