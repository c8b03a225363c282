// The evaluation protocols of spec §4 on frozen embeddings: retrieval recall, k-NN, nearest class
// prototype (few-shot) and the linear probe. Pure functions of CPU tensors (napi/eval.cpp binds them).
#pragma once
#include <vector>

#include <torch/torch.h>

namespace rils {

// Recall@k of image→text and text→image retrieval where pair i matches i. Returns
// [i2t@k…, t2i@k…] as fractions.
std::vector<double> retrieval_recall(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                     const std::vector<int64_t>& ks);

// k-nearest-neighbour labels by cosine similarity, majority vote weighted by similarity
// (ties → the smaller label). train [M, E], labels int64 [M], query [Q, E] → int64 [Q].
torch::Tensor knn_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                          int64_t k, int64_t num_classes);

// Nearest class prototype (mean of the L2-normalised examples of each class, re-normalised) by
// cosine: the few-shot protocol on frozen features. → int64 [Q].
torch::Tensor prototype_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                                int64_t num_classes);

// The linear-probe protocol: multinomial logistic regression on standardised frozen features,
// full-batch L-BFGS with an L2 penalty `weight_decay` on the weights. → predicted labels [Q].
torch::Tensor linear_probe_predict(const torch::Tensor& train, const torch::Tensor& labels, const torch::Tensor& query,
                                   int64_t num_classes, double weight_decay, int64_t iterations);

}  // namespace rils
