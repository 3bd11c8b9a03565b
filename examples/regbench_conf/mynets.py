"""A model of your own: any callable (input_shape, num_classes, **keys) returning an nn.Module."""

from torch import nn


def small_cnn(input_shape, num_classes, width=32, dropout=0.0, batch_norm=False):
    """One conv layer, pooled to 4x4, and a linear classifier.

    dropout and batch_norm are the regularizer switches regbench passes when reg=dropout / reg=bn
    asks for them; a model without one of these parameters refuses that regularizer up front.
    """
    c = input_shape[0]
    layers = [nn.Conv2d(c, width, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(width))
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width * 16, num_classes))
    return nn.Sequential(*layers)
