# VAE latent helpers (vkc_ops_latent.c): posterior sampling into the latent space and tile blending
deepgen_shader(gaussian_latent gaussian_latent.comp)
deepgen_shader(blend_tile blend_tile.comp)
