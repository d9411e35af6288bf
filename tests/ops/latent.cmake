# VAE latent helpers: posterior sampling into latent space, tile blending (vkc_ops_latent.c)
deepgen_op_test(latent test_latent.c)
